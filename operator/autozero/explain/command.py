"""The `explain` command, shared by `autozero explain` and `kubectl autozero explain`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

DESCRIPTION = """\
Say, per group of a ScalingPolicy, why it is where it is: the active profile and why, the count
and its bounds, each rule's value against its threshold or target, cooldowns, stabilization
windows and rate limits in force and when they end, the activation state, failing sources, who
owns the count, the next deadline, and the last decisions. Two sources:

  autozero explain POLICY [-n NAMESPACE]    the operator's status and Events, via the kubeconfig
  autozero explain -f FILE --trace CSV --at TIME
                                            offline, from `simulate`'s state at that instant

The same as a kubectl plugin: kubectl autozero explain POLICY -n NAMESPACE. docs/explain.md
shows how to read the output."""

EPILOG = (
    "exit status: 0 explained (a group that cannot be, says why in its line); 1 the policy "
    "cannot be read (not found, access refused, no kubeconfig) or a file is bad; 2 usage error."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "policy",
        nargs="?",
        metavar="POLICY",
        help="the ScalingPolicy's name in the cluster (not with -f)",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        help="the policy's namespace; default: the kubeconfig context's, else 'default'",
    )
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="explain only this group (repeatable); default: every group",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="kubeconfig to read the policy with; default: $KUBECONFIG, else ~/.kube/config",
    )
    parser.add_argument(
        "--recent",
        type=int,
        default=5,
        metavar="N",
        help="how many recent decisions and Events to show per group (default: %(default)s)",
    )
    parser.add_argument(
        "-f",
        "--filename",
        metavar="FILE",
        help="explain offline: the ScalingPolicy manifest to simulate (with --trace and --at); "
        "default: read the policy from the cluster",
    )
    parser.add_argument(
        "--trace",
        metavar="CSV",
        help="with -f: the trace to replay, as for simulate; default: none",
    )
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="with -f: the instant to explain, RFC 3339 with an offset (e.g. "
        "2026-03-02T08:05:00Z); default: none",
    )
    parser.add_argument(
        "--step",
        metavar="DURATION",
        help="with -f: the evaluation interval; default: the policy's pollingInterval",
    )
    parser.add_argument(
        "--initial-replicas",
        type=int,
        default=0,
        metavar="N",
        help="with -f: the groups' replicas when the trace starts (default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: sentences and a table per group; json: the same as one JSON document "
        "(default: %(default)s)",
    )


def register(commands: Any) -> None:
    """Add `explain` to a command's subparsers."""
    parser = commands.add_parser(
        "explain",
        help="say why each group of a policy is where it is (from the cluster, or offline)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)


def _fail(message: str, err: TextIO) -> int:
    err.write(f"autozero: {message}\n")
    return 1


def _usage(args: argparse.Namespace) -> str | None:
    if args.recent < 0:
        return f"--recent {args.recent}: 0 or more"
    if args.filename is None:
        if args.policy is None:
            return "name a POLICY, or explain offline with -f FILE --trace CSV --at TIME"
        offline = [f for f in ("trace", "at", "step") if getattr(args, f) is not None]
        if offline:
            return f"--{offline[0]} is for offline explanations, with -f"
        return None
    if args.policy is not None:
        return "either POLICY (from the cluster) or -f FILE (offline), not both"
    if args.trace is None or args.at is None:
        return "-f needs --trace CSV and --at TIME"
    if args.namespace is not None or args.kubeconfig is not None:
        return "-n and --kubeconfig are for a policy in the cluster, not with -f"
    return None


def run(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    """Explain as `args` say; returns the exit code (2: a usage error)."""
    err = err or sys.stderr
    from autozero.explain.build import explain, unexplained

    usage = _usage(args)
    if usage is not None:
        err.write(f"autozero explain: error: {usage}\n")
        return 2
    groups = tuple(args.group)
    if args.filename is not None:
        evidence = _offline(args, err)
        if evidence is None:
            return 1
        explanation = explain(evidence, groups)
        code = 0
    else:
        loaded = _live(args)
        if isinstance(loaded, str):
            return _fail(loaded, err)
        namespace, evidence_or_error = loaded
        if isinstance(evidence_or_error, str):
            explanation = unexplained(namespace, args.policy, datetime.now(UTC), evidence_or_error)
            code = 1
        else:
            explanation = explain(evidence_or_error, groups)
            code = 0
    _write(explanation, args.output, out)
    return code


def _write(explanation: Mapping[str, Any], output: str, out: TextIO) -> None:
    from autozero.explain.render import render_text

    if output == "json":
        out.write(json.dumps(explanation, indent=2) + "\n")
    else:
        out.write(render_text(explanation))


def _live(args: argparse.Namespace) -> str | tuple[str, Any]:
    """(namespace, Evidence or why not), or why the cluster cannot be asked at all."""
    from autozero.explain.live import Unexplainable, context_namespace, gather
    from autozero.kubeconfig import KubeconfigError, api_client

    try:
        api = api_client(args.kubeconfig)
        namespace = args.namespace or context_namespace(args.kubeconfig) or "default"
    except KubeconfigError as exc:
        return str(exc)
    try:
        return namespace, gather(api, namespace, args.policy, limit=args.recent)
    except Unexplainable as exc:
        return namespace, str(exc)
    finally:
        api.close()


def _offline(args: argparse.Namespace, err: TextIO) -> Any:
    from autozero.engine.durations import DurationError, parse_duration
    from autozero.explain.offline import evidence_at
    from autozero.manifests import ManifestError, load_manifest
    from autozero.policy.errors import PolicyInvalid
    from autozero.simulator import (
        SimulateError,
        TraceError,
        handoff_signals,
        queue_metrics,
        read_trace,
    )

    try:
        _, policy = load_manifest(args.filename)
    except PolicyInvalid as exc:
        for error in exc.errors:
            err.write(f"{args.filename}: {error}\n")
        return None
    except ManifestError as exc:
        _fail(str(exc), err)
        return None
    names = {g.name for g in policy.groups}
    unknown = [g for g in args.group if g not in names]
    if unknown:
        _fail(f"{args.filename}: no group named {', '.join(unknown)}", err)
        return None
    try:
        at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--at {args.at}: not an RFC 3339 time such as 2026-03-02T08:05:00Z", err)
        return None
    if at.tzinfo is None:
        _fail(f"--at {args.at}: give an offset or Z, e.g. {args.at}Z", err)
        return None
    try:
        step = parse_duration(args.step) if args.step is not None else None
        text = Path(args.trace).read_bytes().decode()
        trace = read_trace(
            text,
            args.trace,
            {m.name for m in policy.metrics},
            queue_metrics(policy),
            handoff_signals(policy),
        )
        return evidence_at(
            policy,
            trace,
            at,
            groups=tuple(args.group),
            initial_replicas=args.initial_replicas,
            step=step,
            limit=args.recent,
        )
    except DurationError as exc:
        _fail(f"--step: {exc}", err)
    except (TraceError, SimulateError) as exc:
        _fail(str(exc), err)
    except OSError as exc:
        _fail(f"{args.trace}: {exc.strerror}", err)
    except UnicodeDecodeError:
        _fail(f"{args.trace}: not a text file; a trace is a UTF-8 CSV", err)
    return None
