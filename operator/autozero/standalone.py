"""`autozero run`: the engine, sources and targets without a cluster (e.g. on a small VM).

State (idle-since, cooldowns, sample windows) is kept in a JSON file so a restart resumes where
it stopped. Secrets are read from a directory laid out like a mounted Secret volume
(`<dir>/<secret name>/<key>`), so the same manifest works here and in a cluster.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from autozero import exits
from autozero.engine.state import GroupState
from autozero.kubeconfig import api_client
from autozero.policy.model import KubernetesTarget, Policy
from autozero.reconcile import CycleReport, PolicyRunner, assemble
from autozero.secrets import (
    NoSecretsDirectory,
    SecretForbidden,
    SecretKeyMissing,
    SecretNotFound,
    SecretUnavailable,
)
from autozero.simulator import decision_json
from autozero.sources.base import PushSource, SourceError, Watch
from autozero.tenancy import GCEAllowlist, Refusal, refusals

log = logging.getLogger(__name__)


def secrets_from_directory(directory: Path | None, namespace: str) -> Callable[[str, str], str]:
    """Secret keys as files, `<directory>/<secret name>/<key>`; SecretUnavailable says which of
    no directory, no Secret, no key, or an unreadable file it is."""

    def resolve(name: str, key: str) -> str:
        where = f"secret {namespace}/{name}"
        if directory is None:
            raise NoSecretsDirectory(
                namespace,
                name,
                key,
                f"{where} key {key!r} is needed, but no --secrets-dir was given: pass "
                f"--secrets-dir DIR with the key in DIR/{name}/{key}",
            )
        folder = directory / name
        if not folder.is_dir():
            raise SecretNotFound(
                namespace, name, key, f"{where} not found: {folder} is not a directory"
            )
        path = folder / key
        if not path.is_file():
            raise SecretKeyMissing(
                namespace, name, key, f"{where} has no key {key!r}: {path} does not exist"
            )
        try:
            return path.read_bytes().decode().strip()
        except PermissionError:
            raise SecretForbidden(
                namespace, name, key, f"{where} key {key!r}: {path} may not be read"
            ) from None
        except OSError as exc:
            raise SecretNotFound(
                namespace, name, key, f"{where} key {key!r}: {path}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise SecretUnavailable(
                namespace, name, key, f"{where} key {key!r}: {path} is not UTF-8 text"
            ) from None

    return resolve


class StandaloneError(Exception):
    """Something `autozero run` was given cannot work; the message names it and what to do."""


class StateFileError(StandaloneError):
    """The --state file cannot be read back or written."""


@dataclass
class StandaloneOptions:
    state_file: Path | None = None
    secrets_dir: Path | None = None
    gce_endpoint: str | None = None
    kubeconfig: Path | None = None
    output: str = "text"  # or "json"
    gce_allow: GCEAllowlist = field(default_factory=GCEAllowlist.everything)
    metrics_port: int | None = None


class PolicyRefused(Exception):
    """The policy reaches outside what the runner was told to allow (--gce-allow)."""

    def __init__(self, refused: list[Refusal]) -> None:
        self.refused = refused
        super().__init__("; ".join(f"{r.reason}: {r}" for r in refused))


def build_runner(policy: Policy, options: StandaloneOptions) -> PolicyRunner:
    """The runner for `policy`; PolicyRefused before any call if it reaches outside the
    allowlist (by default the runner's user may target every project their credentials reach)."""
    refused = refusals(policy, options.gce_allow)
    if refused:
        raise PolicyRefused(refused)
    if options.secrets_dir is not None and not options.secrets_dir.is_dir():
        raise StandaloneError(f"--secrets-dir {options.secrets_dir} is not a directory")
    if options.state_file is not None and not options.state_file.parent.is_dir():
        raise StateFileError(
            f"--state {options.state_file}: its directory {options.state_file.parent} "
            "does not exist"
        )
    states = load_states(options.state_file)  # before any call: a bad file changes nothing
    kube_api: Any = None
    if any(isinstance(g.target, KubernetesTarget) for g in policy.groups):
        kube_api = api_client(options.kubeconfig)
    runner = assemble(
        policy,
        resolve_secret=secrets_from_directory(options.secrets_dir, policy.namespace),
        gce_endpoint=options.gce_endpoint,
        kube_api=kube_api,
    )
    runner.states.update(states)
    return runner


def load_states(path: Path | None) -> dict[str, GroupState]:
    """The groups' engine state saved by an earlier run; StateFileError if `path` holds
    something else (it is never overwritten then: it may be a file the user needs)."""
    if path is None or not path.exists():
        return {}
    fix = "point --state at another file, or delete this one to start afresh"
    try:
        text = path.read_bytes().decode()
        if not text.strip():  # an empty file (`touch state.json`): a fresh start
            return {}
        groups = json.loads(text).get("groups", {})
        return {str(group): GroupState.from_json(state) for group, state in groups.items()}
    except OSError as exc:
        raise StateFileError(f"--state {path}: {exc.strerror}") from None
    except (ValueError, TypeError, KeyError, AttributeError):  # not JSON, or not our JSON
        raise StateFileError(f"--state {path} is not an autozero state file; {fix}") from None


def save_states(path: Path | None, states: Mapping[str, GroupState]) -> None:
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(json.dumps({"groups": {g: s.to_json() for g, s in states.items()}}))
        tmp.replace(path)  # atomic: a crash leaves the old state or the new, never half of one
    except OSError as exc:
        raise StateFileError(f"--state {path}: cannot save the state: {exc.strerror}") from None


def report_lines(report: CycleReport, output: str) -> list[str]:
    lines = []
    for group in report.groups:
        if group.decision is None:
            line = {"time": report.at.isoformat(), "group": group.group, "error": str(group.error)}
            lines.append(
                json.dumps(line)
                if output == "json"
                else f"{report.at:%Y-%m-%dT%H:%M:%SZ} {group.group}: ERROR {group.error}"
            )
            continue
        decision = group.decision
        steps = list(group.applied.steps) if group.applied else []
        if output == "json":
            payload = decision_json(decision) | {"steps": steps, "acted": group.acted}
            if group.error is not None:
                payload["error"] = str(group.error)
            lines.append(json.dumps(payload))
            continue
        extra = f" [{'; '.join(steps)}]" if steps else ""
        failed = f" ERROR {group.error}" if group.error else ""
        lines.append(
            f"{decision.at:%Y-%m-%dT%H:%M:%SZ} {group.group} {decision.action.value} "
            f"{decision.current}->{decision.target}: {decision.message}{extra}{failed}"
        )
    return lines


class Waker:
    """Push sources set this so the loop evaluates at once instead of sleeping to the next poll."""

    def __init__(self, runner: PolicyRunner) -> None:
        self.event = threading.Event()
        self.watches: list[Watch] = []
        for source in runner.sources.values():
            if isinstance(source, PushSource):
                try:
                    self.watches.append(source.watch(lambda _metric: self.event.set()))
                except SourceError as exc:  # a source that cannot push is polled: say so
                    log.info("no push wake for %s: %s", source.metric, exc)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep up to `seconds`; True if pushed work cut it short. Returns soon after `stop`."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.event.wait(min(left, 0.25)):
                self.event.clear()
                return True
        return False

    def stop(self) -> None:
        for watch in self.watches:
            watch.stop()


def failed(report: CycleReport) -> list[str]:
    """The groups of a cycle that failed: their target could not be read or changed, or a
    metric they use could not be read (the engine then held them where they were)."""
    return [g.group for g in report.groups if g.error or (g.decision and g.decision.failing)]


def run(
    policy: Policy,
    options: StandaloneOptions,
    out: TextIO,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Evaluate every pollingInterval (or at once on pushed work) until `stop` is set.

    Returns the exit code: with `once`, CYCLE_FAILED if a group failed in the cycle; a loop
    stopped by `stop` returns OK, its failures having been reported cycle by cycle."""
    runner = build_runner(policy, options)
    metrics = None
    if options.metrics_port is not None:
        from autozero.controller.metrics import Metrics, serve

        metrics = Metrics()
        serve(options.metrics_port, metrics.registry)
    waker = None if once else Waker(runner)
    stop = stop or threading.Event()
    interval = policy.polling_interval.total_seconds()
    code = exits.OK
    try:
        while not stop.is_set():
            started = time.monotonic()
            report = runner.cycle(clock())
            if metrics is not None:
                metrics.record(policy.namespace, report, time.monotonic() - started)
            for line in report_lines(report, options.output):
                out.write(line + "\n")
            out.flush()
            save_states(options.state_file, runner.states)
            if once or waker is None:
                code = exits.CYCLE_FAILED if failed(report) else exits.OK
                break
            waker.wait(max(0.0, interval - (time.monotonic() - started)), stop)
    finally:
        if waker is not None:
            waker.stop()
    return code
