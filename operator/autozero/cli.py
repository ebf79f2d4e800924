"""The `autozero` command line: simulate, validate, convert, explain, run (standalone), operator,
completion."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from autozero import __version__, exits
from autozero.completion import COMPLETION_HELP, SHELLS, complete, shell_code
from autozero.decisions import decision_json
from autozero.engine.decision import Action
from autozero.engine.durations import DurationError, parse_duration
from autozero.explain import command as explain
from autozero.manifests import ManifestError, load_manifest
from autozero.policy.errors import PolicyInvalid
from autozero.policy.model import Policy
from autozero.simulator import (
    SimulateError,
    TraceError,
    handoff_signals,
    queue_metrics,
    read_trace,
    simulate,
)
from autozero.tenancy import GCE_ALLOW_ENV, AllowlistError, GCEAllowlist

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
DEBUG_ENV = "AUTOZERO_DEBUG"


def _non_negative(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; a count of replicas is 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autozero",
        description="Scale worker groups to zero when idle, and back up when work arrives.",
        epilog="Run 'autozero COMMAND --help' for a command's options.\n\n" + exits.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"autozero {__version__}",
        help="print autozero's version and exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = commands.add_parser(
        "simulate",
        help="replay a metric trace through a policy's engine",
        description="Evaluate POLICY every --step over TRACE (CSV: time,metric,value"
        "[,instance][,in_flight]);\nthe simulated group follows each decision at once. "
        "The trace format and the output\nare described in docs/simulate.md.",
        epilog=exits.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument(
        "-f", "--filename", required=True, help="the ScalingPolicy manifest (YAML) to simulate"
    )
    sim.add_argument(
        "--trace",
        required=True,
        help="the CSV trace to replay: a header time,metric,value[,instance][,in_flight], "
        "times in RFC 3339 with an offset",
    )
    sim.add_argument(
        "--group",
        action="append",
        default=[],
        help="simulate only this group (repeatable); default: every group without skip",
    )
    sim.add_argument(
        "--initial-replicas",
        type=_non_negative,
        default=0,
        metavar="N",
        help="the groups' replicas when the trace starts (default: %(default)s)",
    )
    sim.add_argument(
        "--step",
        metavar="DURATION",
        help="evaluation interval, e.g. 30s or 1m (default: the policy's pollingInterval)",
    )
    sim.add_argument(
        "--output",
        choices=("jsonl", "table"),
        default="table",
        help="table: each scale decision, then a summary per group; jsonl: every decision "
        "(holds too) as a JSON line, then the summaries (default: %(default)s)",
    )
    sim.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw the metrics, the replicas and every scale decision (needs matplotlib: "
        "pip install 'autozero[plot]'); default: no plot",
    )

    val = commands.add_parser(
        "validate",
        help="check ScalingPolicy manifests offline, as the apiserver would",
        description="Check every ScalingPolicy in the given files or directories ('-' reads "
        "stdin) against the CRD schema, its CEL rules and autozero's own checks. Every file "
        "and every document gets a verdict: errors are printed as FILE:LINE:COLUMN: [doc N] "
        "PATH: MESSAGE; a document that looks like a ScalingPolicy with a typo in its kind or "
        "apiVersion is checked (and refused); documents of other kinds are skipped and counted.",
        epilog="exit status: 0 every ScalingPolicy is valid; 1 a ScalingPolicy is invalid, a "
        "file is not readable as YAML manifests, or no ScalingPolicy was found; 2 usage error.",
    )
    val.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE_OR_DIR",
        help="a manifest, a directory (its *.yaml and *.yml files, recursively), or '-' "
        "for stdin (repeatable)",
    )
    val.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: one line per error, then a count; json: a report per document "
        "(default: %(default)s)",
    )

    run = commands.add_parser(
        "run",
        help="run a policy without a cluster (GCE groups, or workloads through a kubeconfig)",
        description="Evaluate the policy every pollingInterval (at once when a push source sees "
        "work) and act\non its groups; state is kept in --state so a restart resumes. Each "
        "decision prints a line\n(a group is decided when its inputs change or a deadline comes); "
        "with --once every group is\ndecided once and the exit code tells whether every one went "
        "through. SIGINT or\nSIGTERM stops it once the passes under way are done, its state saved.",
        epilog=exits.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "-f", "--filename", required=True, help="the ScalingPolicy manifest (YAML) to run"
    )
    run.add_argument(
        "--state",
        type=Path,
        metavar="FILE.json",
        help="JSON file that keeps the engine state (idle clocks, cooldowns) across restarts; "
        "default: none, a restart starts afresh",
    )
    run.add_argument(
        "--secrets-dir",
        type=Path,
        metavar="DIR",
        help="secrets as files: DIR/<secret name>/<key> (a mounted Secret layout); "
        "default: none, so the policy cannot read Secrets",
    )
    run.add_argument(
        "--gce-endpoint",
        metavar="URL",
        help="Compute API endpoint (the emulator's); default: "
        "the real API with Application Default Credentials",
    )
    run.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="kubeconfig for kubernetes targets; default: $KUBECONFIG, else ~/.kube/config",
    )
    run.add_argument(
        "--gce-allow",
        action="append",
        default=[],
        metavar="NAMESPACE=PROJECT[,PROJECT]",
        help="refuse GCE projects not listed for the policy's namespace (repeatable; also "
        f"${GCE_ALLOW_ENV}, entries separated by ';'); default: every project",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus /metrics on this port; default: not served",
    )
    run.add_argument(
        "--once",
        action="store_true",
        help=f"run one cycle, then exit ({exits.CYCLE_FAILED} if a group failed in it); "
        "default: run until SIGINT or SIGTERM",
    )
    run.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: a line per decision; json: the same as JSON lines (default: %(default)s)",
    )

    op = commands.add_parser(
        "operator",
        help="run the Kubernetes operator",
        description="Run the operator: watch ScalingPolicies (in every namespace, or those of "
        "--namespace), evaluate each every pollingInterval (at once when a push source sees "
        "work), scale its groups, and report in the policy's status, in Events and on "
        "/metrics. The Helm chart runs it with the right flags and RBAC.",
    )
    op.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig to connect with; default: the in-cluster service account, else "
        "$KUBECONFIG or ~/.kube/config",
    )
    op.add_argument(
        "--metrics-port",
        type=int,
        default=8080,
        metavar="PORT",
        help="serve Prometheus /metrics on this port (default: %(default)s)",
    )
    op.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="serve only these namespaces (repeatable); default: all",
    )
    op.add_argument(
        "--gce-endpoint",
        metavar="URL",
        help="Compute API endpoint (the emulator's, for tests); default: the real API with "
        "Application Default Credentials",
    )
    op.add_argument(
        "--gce-allow",
        action="append",
        default=[],
        metavar="NAMESPACE=PROJECT[,PROJECT]",
        help="GCE projects the policies of a namespace (a glob) may target; repeatable; also "
        f"${GCE_ALLOW_ENV}, entries separated by ';'. Default: none",
    )
    op.add_argument(
        "--default-service-account",
        metavar="NAME",
        help="policies without spec.serviceAccountName are held to what this ServiceAccount of "
        "their namespace may do (SubjectAccessReview); default: the same-namespace rule only",
    )
    op.add_argument(
        "--access-recheck",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how often a running policy's ServiceAccount is checked again (default: %(default)g)",
    )
    op.add_argument(
        "--threads",
        type=int,
        default=16,
        metavar="N",
        help="threads for the policies' blocking calls (sources, targets, status) "
        "(default: %(default)s)",
    )
    op.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, how long the passes under way get to finish; then the operator exits "
        "without waiting for calls still unanswered, a few seconds later at most (keep the Pod's "
        "terminationGracePeriodSeconds 10 s above it; the chart does) (default: %(default)g)",
    )
    op.add_argument(
        "--liveness",
        metavar="URL",
        help="serve a liveness probe at this URL, e.g. http://0.0.0.0:8081/healthz; default: none",
    )
    op.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the Lease holder acts; "
        "default: off, this replica acts alone",
    )
    op.add_argument(
        "--sharding",
        action="store_true",
        help="run as one of several replicas that split the policies between them, each "
        "holding its own Lease (docs/concepts.md, Sharded replicas); not with --leader-elect; "
        "default: off",
    )
    op.add_argument(
        "--identity",
        default=os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
        metavar="NAME",
        help="this replica's name in its Lease and in status.servedBy with --sharding: "
        "$POD_NAME, else HOST-PID (default here: %(default)s)",
    )
    op.add_argument(
        "--shard-group",
        default="autozero",
        metavar="NAME",
        help="with --sharding, the replicas of one group (in the Lease namespace) share the "
        "policies (default: %(default)s)",
    )
    op.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        metavar="NAMESPACE",
        help="namespace of the leader-election Lease: $POD_NAMESPACE, else 'default' "
        "(default here: %(default)s)",
    )
    op.add_argument(
        "--lease-name",
        default="autozero-leader",
        metavar="NAME",
        help="name of the leader-election Lease (default: %(default)s)",
    )
    op.add_argument(
        "--lease-seconds",
        type=int,
        default=15,
        metavar="SECONDS",
        help="how long a Lease holds without renewal before another replica may take it "
        "(or, with --sharding, its policies) (default: %(default)s)",
    )
    op.add_argument(
        "--renew-seconds",
        type=int,
        default=10,
        metavar="SECONDS",
        help="how long the leader keeps trying to renew its Lease before it gives up and exits; "
        "with --sharding, how long a replica serves after its last renewal (the rest of "
        "--lease-seconds is the clock-skew allowance) (default: %(default)s)",
    )
    op.add_argument(
        "--retry-seconds",
        type=int,
        default=2,
        metavar="SECONDS",
        help="how often replicas try to acquire or renew the Lease; with --sharding, how often "
        "each lists the Leases and renews its own (default: %(default)s)",
    )

    conv = commands.add_parser(
        "convert",
        help="print ScalingPolicies for other autoscalers' objects (KEDA ScaledObjects)",
        description="Convert other autoscalers' objects to ScalingPolicies.",
    )
    kinds = conv.add_subparsers(dest="convert", metavar="FROM", required=True)
    keda = kinds.add_parser(
        "keda",
        help="KEDA ScaledObjects and their TriggerAuthentications",
        description="Print a ScalingPolicy for each KEDA ScaledObject in the files (with the "
        "TriggerAuthentications found there): triggers redis (lists), rabbitmq, prometheus, "
        "cron, and cpu or memory with --prometheus. Every field that cannot be carried, or "
        "is carried with another meaning, is one line on stderr: FILE:LINE: OBJECT: FIELD: "
        "why. docs/migrating-from-keda.md explains the mapping.",
        epilog="exit status: 0 every ScaledObject converted (stderr says what differs); 1 one "
        "could not be, a file is unreadable, or none was found; 2 usage error.",
    )
    keda.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE_OR_DIR",
        help="a manifest, a directory (its *.yaml and *.yml files, recursively), or '-' for "
        "stdin (repeatable)",
    )
    keda.add_argument(
        "--prometheus",
        metavar="URL",
        help="convert cpu and memory triggers to queries on this Prometheus (cAdvisor and "
        "kube-state-metrics series); default: such triggers are refused",
    )

    explain.register(commands)

    comp = commands.add_parser(
        "completion",
        help="print the shell code that completes autozero's commands and options",
        description=COMPLETION_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    return parser


def _fail(message: str) -> int:
    print(f"autozero: {message}", file=sys.stderr)
    return 1


def _load(path: str) -> Policy | None:
    """The policy in `path`, or None after printing every error with the file's name."""
    loaded = _load_manifest(path)
    return None if loaded is None else loaded[1]


def _load_manifest(path: str) -> tuple[dict[str, Any], Policy] | None:
    """The policy in `path` and its manifest, or None after printing every error."""
    try:
        return load_manifest(path)
    except PolicyInvalid as exc:
        for error in exc.errors:
            print(f"{path}: {error}", file=sys.stderr)
    except ManifestError as exc:
        _fail(str(exc))
    return None


def run_simulate(args: argparse.Namespace, out: TextIO) -> int:
    policy = _load(args.filename)
    if policy is None:
        return 1
    unknown = [g for g in args.group if g not in {grp.name for grp in policy.groups}]
    if unknown:
        return _fail(f"{args.filename}: no group named {', '.join(unknown)}")
    try:
        step = parse_duration(args.step) if args.step is not None else None
    except DurationError as exc:
        return _fail(f"--step: {exc}")
    if step is not None and step.total_seconds() <= 0:
        return _fail(f"--step {args.step}: must be positive")
    try:
        text = Path(args.trace).read_bytes().decode()
        trace = read_trace(
            text,
            args.trace,
            {m.name for m in policy.metrics},
            queue_metrics(policy),
            handoff_signals(policy),
        )
    except TraceError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.trace}: {exc.strerror}")
    except UnicodeDecodeError:
        return _fail(f"{args.trace}: not a text file; a trace is a UTF-8 CSV (time,metric,value)")
    try:
        iterator, summaries = simulate(
            policy, trace, groups=args.group, initial_replicas=args.initial_replicas, step=step
        )
    except SimulateError as exc:
        return _fail(f"{args.filename}: {exc}")
    decisions = list(iterator)
    if args.plot is not None:
        from autozero.plot import PlotUnavailable, plot_simulation

        groups = args.group or [g.name for g in policy.groups if not g.skip]
        metrics = sorted({m for g in groups for m in policy.group(g).engine.metrics})
        try:
            plot_simulation(
                args.plot, trace, decisions, metrics, f"{policy.name}: simulation", policy=policy
            )
        except PlotUnavailable as exc:
            return _fail(str(exc))
        except ValueError as exc:  # matplotlib knows no such format (the file's suffix)
            return _fail(f"{args.plot}: {exc}")
        except OSError as exc:
            return _fail(f"{args.plot}: {exc.strerror}")
    if args.output == "jsonl":
        for decision in decisions:
            out.write(json.dumps(decision_json(decision)) + "\n")
        out.write(json.dumps({"summary": {g: s.to_json() for g, s in summaries.items()}}) + "\n")
        return 0
    out.write(f"{'time':20}  {'group':12}  {'profile':12}  {'action':8}  {'replicas':>8}  why\n")
    for decision in decisions:
        if decision.action is Action.HOLD:
            continue
        out.write(
            f"{decision.at.strftime('%Y-%m-%dT%H:%M:%SZ'):20}  {decision.group:12}  "
            f"{decision.profile:12}  {decision.action.value:8}  "
            f"{decision.current:>3} → {decision.target:<3}  {decision.message}\n"
        )
    for summary in summaries.values():
        out.write(f"\n{summary.text}\n")
    return 0


def run_validate(args: argparse.Namespace, out: TextIO) -> int:
    from autozero.validate_report import run

    return run(args.filename, args.output, out)


def run_standalone(args: argparse.Namespace, out: TextIO) -> int:
    from autozero.kubeconfig import KubeconfigError
    from autozero.runtime.metrics import MetricsPortError
    from autozero.standalone import (
        EXPLAIN_SIGNAL,
        PolicyUnusable,
        StandaloneError,
        StandaloneOptions,
        run,
    )

    loaded = _load_manifest(args.filename)
    if loaded is None:
        return 1
    body, policy = loaded
    try:
        allow = _allowlist(args.gce_allow) or GCEAllowlist.everything()
    except AllowlistError as exc:
        return _fail(str(exc))
    options = StandaloneOptions(
        args.state,
        args.secrets_dir,
        args.gce_endpoint,
        args.kubeconfig,
        args.output,
        gce_allow=allow,
        metrics_port=args.metrics_port,
    )
    # SIGTERM (systemd, a container runtime) and SIGINT end the loop after the current cycle,
    # its state saved: a clean stop, exit 0.
    stop, explain_now = threading.Event(), threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    # SIGUSR1: print the explanation of every group (docs/explain.md).
    previous[EXPLAIN_SIGNAL] = signal.signal(EXPLAIN_SIGNAL, lambda *_: explain_now.set())
    try:
        return run(body, policy, options, out, once=args.once, stop=stop, explain=explain_now)
    except PolicyUnusable as exc:
        return _fail(f"{args.filename}: {exc}")
    except (StandaloneError, KubeconfigError, MetricsPortError) as exc:
        return _fail(str(exc))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _allowlist(flags: list[str]) -> GCEAllowlist | None:
    """The GCE allowlist from the flags and the environment; None when neither says anything."""
    from_env = GCEAllowlist.from_env()
    if not flags and from_env is None:
        return None
    flagged = GCEAllowlist.parse(flags)
    return GCEAllowlist(flagged.entries + (from_env.entries if from_env else ()))


def main(argv: Sequence[str] | None = None) -> int:
    """The `autozero` command. Every failure ends as one line on stderr and an exit code of
    `autozero.exits`; a traceback only with AUTOZERO_DEBUG=1, for an unexpected error."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a reader gone away shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except BrokenPipeError:  # `autozero simulate ... | head`: the reader has what it wanted
        # Python flushes stdout again at exit; point it at /dev/null so that cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exits.BROKEN_PIPE
    except Exception as exc:  # the last resort: each known failure has its own message
        if os.environ.get(DEBUG_ENV) == "1":
            traceback.print_exc()
        message = " ".join(str(exc).split())
        print(
            f"autozero: internal error: {type(exc).__name__}: {message} (please report; "
            f"rerun with {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return exits.INTERNAL_ERROR


def _operator_usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the operator's numeric flags (each would fail later, less clearly)."""
    if args.threads < 1:
        return f"--threads {args.threads}: at least 1"
    if args.access_recheck <= 0:
        return f"--access-recheck {args.access_recheck:g}: must be positive"
    if args.shutdown_grace <= 0:
        return f"--shutdown-grace {args.shutdown_grace:g}: must be positive"
    for flag in ("lease_seconds", "renew_seconds", "retry_seconds"):
        if getattr(args, flag) <= 0:
            return f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be positive"
    if (args.leader_elect or args.sharding) and args.renew_seconds >= args.lease_seconds:
        return "--renew-seconds must be less than --lease-seconds (the lease would lapse)"
    if args.sharding and args.leader_elect:
        return "--sharding and --leader-elect: choose one (sharding with one replica is a leader)"
    if args.sharding and args.retry_seconds >= args.renew_seconds:
        return "--retry-seconds must be less than --renew-seconds with --sharding"
    return None


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    complete(parser)  # answers the shell's completion request and exits, when it is one
    args = parser.parse_args(argv)
    if args.command == "completion":
        sys.stdout.write(shell_code(args.shell))
        return 0
    if args.command == "simulate":
        return run_simulate(args, sys.stdout)
    if args.command == "validate":
        return run_validate(args, sys.stdout)
    if args.command == "convert":
        from autozero.convert.command import run as run_convert

        return run_convert(args.filename, args.prometheus, sys.stdout, sys.stderr)
    if args.command == "explain":
        return explain.run(args, sys.stdout)
    if args.command == "run":
        return run_standalone(args, sys.stdout)
    if args.command == "operator":
        from autozero.controller.election import ElectionConfig
        from autozero.controller.handlers import LivenessError, ShardingConfig, run_operator
        from autozero.kubeconfig import KubeconfigError
        from autozero.runtime.loop import RuntimeConfig
        from autozero.runtime.metrics import MetricsPortError
        from autozero.sharding.fence import Timings

        usage = _operator_usage(args)
        if usage is not None:
            parser.error(f"operator: {usage}")
        try:
            allow = _allowlist(args.gce_allow) or GCEAllowlist()
        except AllowlistError as exc:
            return _fail(str(exc))
        election = None
        if args.leader_elect:
            election = ElectionConfig(
                args.lease_namespace,
                args.lease_name,
                lease_seconds=args.lease_seconds,
                renew_seconds=args.renew_seconds,
                retry_seconds=args.retry_seconds,
            )
        sharding = None
        if args.sharding:
            sharding = ShardingConfig(
                args.lease_namespace,
                args.identity,
                args.shard_group,
                Timings(args.lease_seconds, args.renew_seconds, args.retry_seconds),
            )
        try:
            run_operator(
                kubeconfig=args.kubeconfig,
                metrics_port=args.metrics_port,
                namespaces=args.namespace,
                config=RuntimeConfig(gce_allow=allow, gce_endpoint=args.gce_endpoint),
                default_service_account=args.default_service_account,
                access_recheck=args.access_recheck,
                liveness=args.liveness,
                election=election,
                sharding=sharding,
                threads=args.threads,
                shutdown_grace=args.shutdown_grace,
            )
        except (KubeconfigError, LivenessError, MetricsPortError) as exc:
            return _fail(f"operator: {exc}")
        return 0
    parser.print_help(sys.stderr)
    return exits.USAGE


if __name__ == "__main__":
    sys.exit(main())
