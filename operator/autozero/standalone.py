"""`autozero run`: the runtime without a cluster of its own (e.g. on a small VM).

The same runtime as the operator's; only the shell differs. State (idle-since, cooldowns, sample
windows) is kept in a JSON file so a restart resumes where it stopped; reports are lines on
stdout and `/metrics`. Secrets are read from a directory laid out like a mounted Secret volume
(`<dir>/<secret name>/<key>`), so the same manifest works here and in a cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from autozero import exits
from autozero.decisions import decision_json, timestamp
from autozero.engine.state import GroupState
from autozero.explain.evidence import Recent
from autozero.explain.running import explanation_lines, recent_of
from autozero.kubeconfig import api_client
from autozero.policy.model import Policy
from autozero.runtime.assemble import Assembly
from autozero.runtime.life import PolicyKey
from autozero.runtime.loop import Runtime, RuntimeConfig
from autozero.runtime.metrics import Metrics, serve
from autozero.runtime.report import CycleReport
from autozero.runtime.shell import SecretResolver
from autozero.secrets import (
    NoSecretsDirectory,
    SecretForbidden,
    SecretKeyMissing,
    SecretNotFound,
    SecretUnavailable,
)
from autozero.targets.gce import GCEAllowlist
from autozero.targets.kubernetes import Owner
from autozero.targets.registry import kind_of
from autozero.tenancy import Refusal, refusals

log = logging.getLogger(__name__)

#: `kill -USR1 PID`: print the explanation of every group (docs/explain.md).
EXPLAIN_SIGNAL = signal.SIGUSR1
RECENT = 5  # decisions remembered per group for the explanation


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


class PolicyUnusable(StandaloneError):
    """The policy cannot be served as it is: a Secret, a target's settings, the allowlist."""


@dataclass
class StandaloneOptions:
    state_file: Path | None = None
    secrets_dir: Path | None = None
    gce_endpoint: str | None = None
    kubeconfig: Path | None = None
    output: str = "text"  # or "json"
    gce_allow: GCEAllowlist = field(default_factory=GCEAllowlist.everything)
    metrics_port: int | None = None


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
    """A line per group decided in the pass (the others' last line still holds)."""
    lines = []
    for group in report.fresh():
        if group.decision is None:
            line = {"time": timestamp(report.at), "group": group.group, "error": str(group.error)}
            lines.append(
                json.dumps(line)
                if output == "json"
                else f"{timestamp(report.at)} {group.group}: ERROR {group.error}"
            )
            continue
        decision = group.decision
        steps = list(group.applied.steps) if group.applied else []
        pool = group.applied.pool if group.applied else ""
        if output == "json":
            payload = decision_json(decision) | {"steps": steps, "acted": group.acted}
            if pool:
                payload["pool"] = pool
            error = group.error
            if error is not None:  # a sleep withdrawn is a note, not an error
                payload["error" if error.failure else "note"] = str(error)
            lines.append(json.dumps(payload))
            continue
        extra = (f": {pool}" if pool else "") + (f" [{'; '.join(steps)}]" if steps else "")
        error = group.error
        said = (
            ""
            if error is None
            else f" ERROR {error}"
            if error.failure
            else f" {error.event_reason}: {error.detail}"
        )
        lines.append(
            f"{timestamp(decision.at)} {group.group} {decision.action.value} "
            f"{decision.current}->{decision.target}: {decision.message}{extra}{said}"
        )
    return lines


def failed(report: CycleReport) -> list[str]:
    """The groups of a pass that failed: their target could not be read or changed, or a
    metric they use could not be read (the engine then held them where they were)."""
    return [
        g.group
        for g in report.groups
        if (g.error and g.error.failure) or (g.decision and g.decision.failing)
    ]


@dataclass
class StandaloneShell:
    """Where `autozero run` keeps state (a file) and sends reports (stdout)."""

    options: StandaloneOptions
    out: TextIO
    states: Mapping[str, GroupState]
    on_unusable: Callable[[str], None]
    recheck_seconds: float | None = None
    persists: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)
    recent: dict[str, deque[Recent]] = field(default_factory=dict)  # for the explanation

    def secrets(self, namespace: str) -> SecretResolver:
        return secrets_from_directory(self.options.secrets_dir, namespace)

    def owner(self, body: Mapping[str, Any]) -> Owner | None:  # noqa: ARG002
        return None  # no ScalingPolicy object to own an HPA: it is known by its name

    def inspect(self, key: PolicyKey, manifest: Mapping[str, Any]) -> None:
        """Nothing: the file is the policy; no CRD stands between them."""

    def restore(self, key: PolicyKey, body: Mapping[str, Any]) -> Mapping[str, GroupState]:  # noqa: ARG002
        return self.states

    def admit(self, policy: Policy, parts: Assembly) -> list[Refusal]:  # noqa: ARG002
        return []  # the allowlist (--gce-allow) is the runtime's; there is no RBAC here

    def report(self, key: PolicyKey, body: Mapping[str, Any], report: CycleReport) -> None:  # noqa: ARG002
        with self.lock:
            for line in report_lines(report, self.options.output):
                self.out.write(line + "\n")
            self.out.flush()
            for group in report.fresh():
                if group.decision is not None:
                    moved = recent_of(group.decision, acted=group.acted)
                    if moved is not None:
                        self.recent.setdefault(group.group, deque(maxlen=RECENT)).append(moved)

    def explain(self, runtime: Runtime) -> None:
        """Print the explanation of every group served (on SIGUSR1), between report lines."""
        lives = [slot.life for slot in runtime.slots.values() if slot.life is not None]
        with self.lock:
            self.out.write(
                explanation_lines(
                    lives, now=datetime.now(UTC), recent=self.recent, output=self.options.output
                )
            )
            self.out.flush()

    def begin(
        self,
        key: PolicyKey,  # noqa: ARG002
        body: Mapping[str, Any],  # noqa: ARG002
        states: Mapping[str, GroupState],
    ) -> None:
        save_states(self.options.state_file, states)

    def persist(self, key: PolicyKey, states: Mapping[str, GroupState]) -> None:  # noqa: ARG002
        save_states(self.options.state_file, states)

    def unusable(
        self,
        key: PolicyKey,  # noqa: ARG002
        body: Mapping[str, Any],  # noqa: ARG002
        errors: list[str],
        reason: str,
    ) -> None:
        said = "; ".join(errors)
        refused = reason not in ("InvalidPolicy", "SourceConfigError", "TargetConfigError")
        self.on_unusable(f"{reason}: {said}" if refused else said)

    def forget(self, key: PolicyKey) -> None:
        pass


def _check(options: StandaloneOptions) -> dict[str, GroupState]:
    """What can be checked before anything starts; the saved state."""
    if options.secrets_dir is not None and not options.secrets_dir.is_dir():
        raise StandaloneError(f"--secrets-dir {options.secrets_dir} is not a directory")
    if options.state_file is not None and not options.state_file.parent.is_dir():
        raise StateFileError(
            f"--state {options.state_file}: its directory {options.state_file.parent} "
            "does not exist"
        )
    return load_states(options.state_file)  # before any call: a bad file changes nothing


def run(
    body: Mapping[str, Any],
    policy: Policy,
    options: StandaloneOptions,
    out: TextIO,
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    explain: threading.Event | None = None,
) -> int:
    """Serve the policy until `stop` is set (or for one pass with `once`); print the explanation
    of every group whenever `explain` is set (by the caller's SIGUSR1 handler: only the main
    thread may install one, and `run` may be called from another).

    Returns the exit code: with `once`, CYCLE_FAILED if a group failed in the pass; a loop
    stopped by `stop` returns OK, its failures having been reported as they came. A policy
    that cannot be served (a Secret, a target's settings, the allowlist) raises PolicyUnusable.
    """
    states = _check(options)
    config = RuntimeConfig(options.gce_allow, options.gce_endpoint)
    refused = refusals(policy, config)  # before any call, a kubeconfig's included
    if refused:
        raise PolicyUnusable(f"{refused[0].reason}: " + "; ".join(map(str, refused)))
    if any(kind_of(g.target).uses_cluster for g in policy.groups):
        config.kube_api = api_client(options.kubeconfig)
    metrics = Metrics()
    if options.metrics_port is not None:
        serve(options.metrics_port, metrics.registry)
    problems: list[str] = []
    shell = StandaloneShell(options, out, states, problems.append)
    runtime = Runtime(shell, config, metrics, cluster_wide=False)
    runtime.serve(body)
    if once:
        reports = asyncio.run(runtime.once())
        if problems:
            raise PolicyUnusable(problems[0])
        return exits.CYCLE_FAILED if any(failed(r) for r in reports) else exits.OK
    wanted = explain or threading.Event()
    asyncio.run(_serve(runtime, stop or threading.Event(), problems, wanted, shell))
    if problems:
        raise PolicyUnusable(problems[0])
    return exits.OK


async def _serve(
    runtime: Runtime,
    stop: threading.Event,
    problems: list[str],
    explain: threading.Event,
    shell: StandaloneShell,
) -> None:
    """Run the runtime until `stop` is set (by a signal handler) or the policy proves unusable
    (one policy that cannot be served is an error for a command line, not a retry loop). On
    SIGUSR1 (`explain` set), print the explanation, from the loop's thread: the runtime's
    memory is read between two of its steps, never in the middle of one."""
    serving = asyncio.get_running_loop().create_task(runtime.run())
    while not serving.done():
        if await asyncio.to_thread(stop.wait, 0.25) or problems:
            runtime.stop()
            break
        if explain.is_set():
            explain.clear()
            shell.explain(runtime)
    await serving
