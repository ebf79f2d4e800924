"""The installed `autozero` command on bad inputs: every case exits with its documented non-zero
code (autozero.exits), says what is wrong, and never shows a traceback nor the last-resort
"internal error" line (that one is for bugs, not for inputs anybody could give).

The corpus is the table below: files are made by the `workdir` fixture and named for what is
wrong with them; every command runs in that directory, with an empty HOME and no Kubernetes or
Google credentials in its environment. `{busy}` is a port something already listens on.
Nothing here leaves loopback: Google's metadata-server probe is switched off and pointed at it.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUTOZERO = Path(sys.executable).with_name("autozero")  # the console script pip installed (.venv)
EXAMPLES = ROOT / "examples"

OK, BAD, USAGE, CYCLE, PIPE = 0, 1, 2, 3, 141


@dataclass(frozen=True)
class Case:
    id: str
    argv: str  # split like a shell line; run in the work directory
    code: int
    says: str  # must appear in `stream`
    env: dict[str, str] = field(default_factory=dict)
    closed_stdout: bool = False  # the reader of stdout went away (`| head`)
    stream: str = "stderr"  # a failed cycle and validate's verdicts are reports, on stdout
    lines: int | None = 1  # lines on stderr, when `code` is BAD and it is said there

    def param(self) -> object:
        return pytest.param(self, id=self.id)


def case(id: str, code: int, argv: str, says: str, **extra: object) -> object:
    return Case(id, argv, code, says, **extra).param()  # type: ignore[arg-type]


SIM = "simulate -f nightly.yaml --trace"
RUN_KUBE = "run --once -f prom-kube.yaml"
RUN_GCE = "run --once -f queue-gce.yaml --gce-endpoint http://127.0.0.1:1/"
KUBE_UP = f"{RUN_KUBE} --kubeconfig kc-closed.yaml"  # gets past the kubeconfig
OP = "operator --kubeconfig kc-closed.yaml"

# fmt: off
CORPUS = [
    # id                              exit   command line (run in the work directory)
    #                                        what it says
    # -- the command line ------------------------------------------------------------------------
    case("no-command",                  USAGE, "",
         "usage: autozero"),
    case("unknown-command",             USAGE, "frobnicate",
         "invalid choice: 'frobnicate'"),
    case("unknown-flag",                USAGE, "--frobnicate",
         "unrecognized arguments: --frobnicate"),
    case("help-with-a-value",           USAGE, "--help=all",
         "argument -h/--help: ignored explicit argument 'all'"),
    case("version-with-a-value",        USAGE, "--version=2",
         "argument --version: ignored explicit argument '2'"),
    case("run-help-with-a-value",       USAGE, "run --help=yes",
         "ignored explicit argument 'yes'"),
    case("simulate-short-help-value",   USAGE, "simulate -hx",
         "ignored explicit argument 'x'"),
    case("version-not-a-subcommand",    USAGE, "version",
         "invalid choice: 'version'"),
    # -- validate --------------------------------------------------------------------------------
    case("validate-binary-file",        BAD,   "validate -f binary.yaml",
         "binary.yaml: not UTF-8 text", stream="stdout"),
    case("validate-missing-file",       BAD,   "validate -f nope.yaml",
         "nope.yaml: no such file", stream="stdout"),
    case("validate-not-yaml",           BAD,   "validate -f not-yaml.yaml",
         "not-yaml.yaml:2:", stream="stdout"),
    case("validate-no-policy",          BAD,   "validate -f deployment.yaml",
         "no ScalingPolicy found in deployment.yaml", stream="stdout"),
    case("validate-invalid-field",      BAD,   "validate -f invalid.yaml",
         "idleFor", stream="stdout"),
    case("validate-without-file",       USAGE, "validate",
         "the following arguments are required: -f"),
    # -- simulate: the trace ---------------------------------------------------------------------
    case("trace-nan",                   BAD,   f"{SIM} nan.csv",
         "nan.csv:3: value and in_flight must be finite numbers"),
    case("trace-inf",                   BAD,   f"{SIM} inf.csv",
         "inf.csv:2: value and in_flight must be finite numbers"),
    case("trace-minus-inf",             BAD,   f"{SIM} minus-inf.csv",
         "minus-inf.csv:2: value and in_flight must be finite"),
    case("trace-nan-in-flight",         BAD,   f"{SIM} nan-in-flight.csv",
         "nan-in-flight.csv:2: value and in_flight must be finite"),
    case("trace-negative-queue",        BAD,   f"{SIM} negative.csv",
         "negative.csv:3: value -4 is negative: backlog is a queue length"),
    case("trace-negative-in-flight",    BAD,   f"{SIM} negative-in-flight.csv",
         "negative-in-flight.csv:2: in_flight -1 is negative"),
    case("trace-binary",                BAD,   f"{SIM} binary.csv",
         "binary.csv: not a text file"),
    case("trace-nul-byte",              BAD,   f"{SIM} nul.csv",
         "nul.csv:2:"),
    case("trace-empty-file",            BAD,   f"{SIM} empty.csv",
         "empty.csv:1: the header must name time,metric,value"),
    case("trace-header-only",           BAD,   f"{SIM} header-only.csv",
         "header-only.csv:2: the trace has no rows"),
    case("trace-unknown-column",        BAD,   f"{SIM} extra-column.csv",
         "extra-column.csv:1: unknown columns ['cpu']"),
    case("trace-unknown-metric",        BAD,   f"{SIM} unknown-metric.csv",
         "unknown-metric.csv:2: unknown metric 'nope'"),
    case("trace-no-offset",             BAD,   f"{SIM} no-offset.csv",
         "no-offset.csv:2: time '2026-11-23T00:00:00' needs an offset"),
    case("trace-bad-time",              BAD,   f"{SIM} bad-time.csv",
         "bad-time.csv:2: time 'yesterday' is not RFC 3339"),
    case("trace-short-row",             BAD,   f"{SIM} short-row.csv",
         "short-row.csv:2:"),
    case("trace-is-a-directory",        BAD,   f"{SIM} .",
         ".: Is a directory"),
    case("trace-missing",               BAD,   f"{SIM} nope.csv",
         "nope.csv: No such file or directory"),
    case("trace-a-century-at-1s",       BAD,   f"{SIM} century.csv --step 1s",
         "pass a larger --step or a shorter trace"),
    # -- simulate: flags and policy --------------------------------------------------------------
    case("initial-replicas-negative",   USAGE, f"{SIM} ok.csv --initial-replicas -3",
         "--initial-replicas: -3 is negative"),
    case("initial-replicas-word",       USAGE, f"{SIM} ok.csv --initial-replicas many",
         "'many' is not a whole number"),
    case("step-zero",                   BAD,   f"{SIM} ok.csv --step 0s",
         "--step 0s: must be positive"),
    case("step-without-unit",           BAD,   f"{SIM} ok.csv --step 30",
         "--step: invalid duration '30': a unit is required"),
    case("step-beyond-timedelta",       BAD,   f"{SIM} ok.csv --step 99999999999999999999h",
         "too long"),
    case("polling-interval-zero",       BAD,   "simulate -f zero-poll.yaml --trace ok.csv",
         "spec.pollingInterval: must be longer than 0s"),
    case("unknown-group",               BAD,   f"{SIM} ok.csv --group ghost",
         "no group named ghost"),
    case("plot-unknown-format",         BAD,   f"{SIM} ok.csv --plot out.nope",
         "out.nope: Format 'nope' is not supported"),
    case("plot-missing-directory",      BAD,   f"{SIM} ok.csv --plot no/dir/x.png",
         "no/dir/x.png: No such file or directory"),
    case("output-unknown",              USAGE, f"{SIM} ok.csv --output xml",
         "invalid choice: 'xml'"),
    case("jsonl-into-closed-pipe",      PIPE,  f"{SIM} long.csv --output jsonl",
         "", closed_stdout=True),
    case("policy-binary",               BAD,   "simulate -f binary.yaml --trace ok.csv",
         "binary.yaml"),
    case("policy-missing",              BAD,   "simulate -f nope.yaml --trace ok.csv",
         "nope.yaml: no such file"),
    case("policy-a-yaml-list",          BAD,   "simulate -f list.yaml --trace ok.csv",
         "expected exactly one ScalingPolicy, found 0"),
    case("policy-two-in-one-file",      BAD,   "simulate -f two.yaml --trace ok.csv",
         "expected exactly one ScalingPolicy, found 2"),
    case("policy-invalid-field",        BAD,   "simulate -f invalid.yaml --trace ok.csv",
         "spec.groups[0].activation.idleFor"),
    # -- run: Kubernetes -------------------------------------------------------------------------
    case("no-kubeconfig",               BAD,   RUN_KUBE,
         "no kubeconfig found (the default kubeconfig "),
    case("kubeconfig-missing",          BAD,   f"{RUN_KUBE} --kubeconfig nope.yaml",
         "--kubeconfig nope.yaml does not exist"),
    case("kubeconfig-binary",           BAD,   f"{RUN_KUBE} --kubeconfig binary.yaml",
         "binary.yaml is not text"),
    case("kubeconfig-a-yaml-list",      BAD,   f"{RUN_KUBE} --kubeconfig list.yaml",
         "list.yaml is not a kubeconfig"),
    case("kubeconfig-not-yaml",         BAD,   f"{RUN_KUBE} --kubeconfig not-yaml.yaml",
         "not-yaml.yaml is not valid YAML"),
    case("kubeconfig-no-context",       BAD,   f"{RUN_KUBE} --kubeconfig kc-no-context.yaml",
         "current-context"),
    case("kubeconfig-env-missing",      BAD,   RUN_KUBE,
         "$KUBECONFIG's nope.yaml does not exist", env={"KUBECONFIG": "nope.yaml"}),
    case("apiserver-down",              CYCLE, KUBE_UP,
         "the apiserver did not answer", stream="stdout"),
    # -- run: Secrets, GCE credentials, allowlist ------------------------------------------------
    case("no-secrets-dir",              BAD,   RUN_GCE,
         "secret batch/queue key 'url' is needed, but no --secrets-dir was given"),
    case("secrets-dir-missing",         BAD,   f"{RUN_GCE} --secrets-dir nope",
         "--secrets-dir nope is not a directory"),
    case("secrets-dir-a-file",          BAD,   f"{RUN_GCE} --secrets-dir ok.csv",
         "--secrets-dir ok.csv is not a directory"),
    case("secret-not-found",            BAD,   f"{RUN_GCE} --secrets-dir no-secrets",
         "secret batch/queue not found"),
    case("secret-key-missing",          BAD,   f"{RUN_GCE} --secrets-dir no-key",
         "secret batch/queue has no key 'url'"),
    case("no-default-credentials",      BAD,   "run --once -f prom-gce.yaml",
         "no Application Default Credentials for GCE project acme"),
    case("credentials-file-missing",    BAD,   "run --once -f prom-gce.yaml",
         "nope.json", env={"GOOGLE_APPLICATION_CREDENTIALS": "nope.json"}),
    case("gce-allow-malformed",         BAD,   f"{RUN_GCE} --gce-allow batch",
         "GCE allowlist entry 'batch'"),
    case("gce-allow-env-malformed",     BAD,   RUN_GCE,
         "GCE allowlist entry '=acme'", env={"AUTOZERO_GCE_ALLOW": "=acme"}),
    case("project-not-allowed",         BAD,   f"{RUN_GCE} --gce-allow batch=other",
         "GCEProjectNotAllowed: bids"),
    # -- run: state, metrics port, policy --------------------------------------------------------
    case("state-not-json",              BAD,   f"{KUBE_UP} --state not-yaml.yaml",
         "not-yaml.yaml is not an autozero state file"),
    case("state-binary",                BAD,   f"{KUBE_UP} --state binary.yaml",
         "binary.yaml is not an autozero state file"),
    case("state-a-json-list",           BAD,   f"{KUBE_UP} --state list.json",
         "list.json is not an autozero state file"),
    case("state-a-directory",           BAD,   f"{KUBE_UP} --state no-key",
         "--state no-key: Is a directory"),
    case("state-in-missing-dir",        BAD,   f"{KUBE_UP} --state nope/state.json",
         "its directory nope does not exist"),
    case("metrics-port-too-big",        BAD,   f"{KUBE_UP} --metrics-port 70000",
         "--metrics-port 70000: a port is 0 to 65535"),
    case("metrics-port-busy",           BAD,   f"{KUBE_UP} --metrics-port {{busy}}",
         "Address already in use"),
    case("metrics-port-word",           USAGE, f"{RUN_KUBE} --metrics-port http",
         "invalid int value: 'http'"),
    case("run-polling-zero",            BAD,   "run -f zero-poll.yaml",
         "spec.pollingInterval: must be longer than 0s"),
    case("run-policy-binary",           BAD,   "run --once -f binary.yaml",
         "binary.yaml"),
    case("run-policy-invalid",          BAD,   "run --once -f invalid.yaml",
         "spec.groups[0].activation.idleFor"),
    case("run-output-unknown",          USAGE, f"{RUN_KUBE} --output yaml",
         "invalid choice: 'yaml'"),
    case("run-without-policy",          USAGE, "run --once",
         "the following arguments are required: -f"),
    # -- operator --------------------------------------------------------------------------------
    case("operator-no-kubeconfig",      BAD,   "operator",
         "operator: not in a cluster"),
    case("operator-kubeconfig-missing", BAD,   "operator --kubeconfig nope.yaml",
         "--kubeconfig nope.yaml does not exist"),
    case("operator-kubeconfig-binary",  BAD,   "operator --kubeconfig binary.yaml",
         "binary.yaml is not text"),
    case("operator-kubeconfig-list",    BAD,   "operator --kubeconfig list.yaml",
         "list.yaml is not a kubeconfig"),
    case("operator-kubeconfig-no-ca-file",BAD,   "operator --kubeconfig kc-no-ca.yaml",
         "/nonexistent/ca.crt"),
    case("operator-kubeconfig-env-dir", BAD,   "operator",
         "$KUBECONFIG's no-key is not a file", env={"KUBECONFIG": "no-key"}),
    case("operator-threads-zero",       USAGE, f"{OP} --threads 0",
         "--threads 0: at least 1"),
    case("operator-threads-word",       USAGE, f"{OP} --threads many",
         "invalid int value: 'many'"),
    case("operator-recheck-zero",       USAGE, f"{OP} --access-recheck 0",
         "--access-recheck 0: must be positive"),
    case("operator-shutdown-grace-zero",USAGE, f"{OP} --shutdown-grace 0",
         "--shutdown-grace 0: must be positive"),
    case("operator-lease-zero",         USAGE, f"{OP} --leader-elect --lease-seconds 0",
         "--lease-seconds 0: must be positive"),
    case("operator-renew-past-lease",   USAGE, f"{OP} --leader-elect --renew-seconds 20",
         "--renew-seconds must be less than --lease-seconds"),
    case("operator-metrics-port-too-big",BAD,   f"{OP} --metrics-port 70000",
         "--metrics-port 70000: a port is 0 to 65535"),
    case("operator-metrics-port-busy",  BAD,   f"{OP} --metrics-port {{busy}}",
         "Address already in use"),
    case("operator-liveness-not-http",  BAD,   f"{OP} --liveness tcp://0.0.0.0:8081",
         "--liveness tcp://0.0.0.0:8081: must be http://HOST:PORT/PATH"),
    case("operator-liveness-bad-port",  BAD,   f"{OP} --liveness http://0.0.0.0:port/healthz",
         "the port is not a number"),
    case("operator-liveness-busy",      BAD,   f"{OP} --liveness http://0.0.0.0:{{busy}}/healthz",
         "cannot serve it: Address already in use"),
    case("operator-gce-allow-malformed",BAD,   f"{OP} --gce-allow =x",
         "GCE allowlist entry '=x'"),
]
# fmt: on

GCE_POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: nightly, namespace: batch}
spec:
  pollingInterval: 1s
  metrics:
    - name: backlog
      rq: {urlFrom: {secretKeyRef: {name: queue, key: url}}, queue: bids}
  groups:
    - name: bids
      target: {gce: {project: acme, zone: europe-west1-c, instanceGroupManager: bids}}
      capacity: {minimum: 0, maximum: 4, default: 2}
      activation: {metric: backlog, idleFor: 3s}
"""
PROMETHEUS = "prometheus: {serverAddress: 'http://127.0.0.1:1', query: 'sum(jobs)'}"
# A query as the activation metric needs an explicit threshold.
PROM_GCE_POLICY = GCE_POLICY.replace(
    "rq: {urlFrom: {secretKeyRef: {name: queue, key: url}}, queue: bids}", PROMETHEUS
).replace(
    "activation: {metric: backlog, idleFor: 3s}",
    "activation: {metric: backlog, threshold: 0, idleFor: 3s}",
)
PROM_KUBE_POLICY = PROM_GCE_POLICY.replace(
    "gce: {project: acme, zone: europe-west1-c, instanceGroupManager: bids}",
    "kubernetes: {apiVersion: apps/v1, kind: Deployment, name: bids}",
)
DEPLOYMENT = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
BINARY = bytes(range(256)) * 4  # not UTF-8 anywhere past its first 128 bytes
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", %s}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def rows(*lines: str, header: str = "time,metric,value") -> str:
    return "\n".join([header, *lines]) + "\n"


def write_workdir(root: Path) -> None:
    nightly = (EXAMPLES / "nightly-batch.yaml").read_text()
    text_files = {
        "nightly.yaml": nightly,
        "zero-poll.yaml": nightly.replace("pollingInterval: 1m", "pollingInterval: 0s"),
        "invalid.yaml": GCE_POLICY.replace("idleFor: 3s", "idleFor: soon"),
        "two.yaml": nightly + "\n---\n" + nightly,
        "queue-gce.yaml": GCE_POLICY,
        "prom-gce.yaml": PROM_GCE_POLICY,
        "prom-kube.yaml": PROM_KUBE_POLICY,
        "deployment.yaml": DEPLOYMENT,
        "list.yaml": "- a\n- b\n",
        "list.json": "[1, 2]\n",
        "not-yaml.yaml": "a: [\n",
        "kc-closed.yaml": KUBECONFIG % "insecure-skip-tls-verify: true",
        "kc-no-ca.yaml": KUBECONFIG % "certificate-authority: /nonexistent/ca.crt",
        "kc-no-context.yaml": "apiVersion: v1\nkind: Config\nclusters: []\n",
        "ok.csv": rows("2026-11-23T00:00:00Z,backlog,1", "2026-11-23T02:00:00Z,backlog,0"),
        "long.csv": rows(*(f"2026-11-{d:02d}T00:00:00Z,backlog,{d % 3}" for d in range(1, 29))),
        "century.csv": rows("2000-01-01T00:00:00Z,backlog,1", "2100-01-01T00:00:00Z,backlog,0"),
        "nan.csv": rows("2026-11-23T00:00:00Z,backlog,1", "2026-11-23T00:01:00Z,backlog,nan"),
        "inf.csv": rows("2026-11-23T00:00:00Z,backlog,inf"),
        "minus-inf.csv": rows("2026-11-23T00:00:00Z,backlog,-Infinity"),
        "nan-in-flight.csv": rows(
            "2026-11-23T00:00:00Z,backlog,1,NaN", header="time,metric,value,in_flight"
        ),
        "negative.csv": rows("2026-11-23T00:00:00Z,backlog,1", "2026-11-23T00:01:00Z,backlog,-4"),
        "negative-in-flight.csv": rows(
            "2026-11-23T00:00:00Z,backlog,0,-1", header="time,metric,value,in_flight"
        ),
        "nul.csv": rows("2026-11-23T00:00:00Z,backlog,1\x00"),
        "empty.csv": "",
        "header-only.csv": rows(),
        "extra-column.csv": rows(
            "2026-11-23T00:00:00Z,backlog,1,3", header="time,metric,value,cpu"
        ),
        "unknown-metric.csv": rows("2026-11-23T00:00:00Z,nope,1"),
        "no-offset.csv": rows("2026-11-23T00:00:00,backlog,1"),
        "bad-time.csv": rows("yesterday,backlog,1"),
        "short-row.csv": rows("2026-11-23T00:00:00Z"),
    }
    for name, text in text_files.items():
        (root / name).write_text(text)
    for name in ("binary.yaml", "binary.csv"):
        (root / name).write_bytes(BINARY)
    (root / "no-secrets").mkdir()
    (root / "no-key" / "queue").mkdir(parents=True)
    (root / "home").mkdir()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    write_workdir(root)
    return root


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port taken on every address, as the metrics server would bind it."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def environment(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    """No kubeconfig, no Google credentials, not in a cluster; and no probe of Google's metadata
    server (it would leave loopback): the check is off and its address is loopback anyway."""
    drop = ("KUBECONFIG", "GOOGLE_APPLICATION_CREDENTIALS", "KUBERNETES_SERVICE_HOST")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AUTOZERO")}
    env |= {
        "HOME": str(workdir / "home"),
        "CLOUDSDK_CONFIG": str(workdir / "home" / "gcloud"),
        "NO_GCE_CHECK": "true",
        "GCE_METADATA_HOST": "127.0.0.1:1",
        "GCE_METADATA_IP": "127.0.0.1:1",
    }
    return env | extra


def autozero(workdir: Path, bad: Case, busy: int) -> subprocess.CompletedProcess[str]:
    argv = [str(AUTOZERO), *shlex.split(bad.argv.format(busy=busy))]
    env = environment(workdir, bad.env)
    if not bad.closed_stdout:
        return subprocess.run(
            argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    read, write = os.pipe()
    os.close(read)  # whatever autozero writes now meets a closed pipe
    try:
        done = subprocess.run(
            argv, cwd=workdir, env=env, stdout=write, stderr=subprocess.PIPE, text=True,
            timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    return subprocess.CompletedProcess(argv, done.returncode, "", done.stderr)


def test_the_corpus_is_large_and_every_id_is_unique() -> None:
    assert AUTOZERO.is_file(), f"{AUTOZERO}: install autozero in this interpreter's environment"
    ids = [p.values[0].id for p in CORPUS]  # type: ignore[attr-defined]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("bad", CORPUS)
def test_a_bad_input_is_one_clear_error_never_a_traceback(
    workdir: Path, busy_port: int, bad: Case
) -> None:
    done = autozero(workdir, bad, busy_port)
    shown = f"exit {done.returncode}\nstdout: {done.stdout[-1500:]}\nstderr: {done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, shown
    assert "autozero: internal error" not in done.stderr, shown
    assert done.returncode == bad.code != OK, shown
    if bad.code == PIPE:
        assert done.stderr == "", shown  # quiet: the reader chose to stop
        return
    assert bad.says in getattr(done, bad.stream), shown
    if bad.code == BAD and bad.stream == "stderr" and bad.lines is not None:
        assert len(done.stderr.splitlines()) == bad.lines, shown  # one line says it all
