"""The setup scripts on a fresh machine: the install path itself, not only "already installed".

The real scripts run with a PATH on which the servers are absent and the system commands (apt-get,
service, sudo, id, go, python) are stubs that record how they were called; policy-rc.d, the
RabbitMQ bin dir, the CNI plugins' dir, /usr/sbin and the cache are moved into a temporary
directory through the scripts' environment variables, so nothing here touches the machine's
packages, /usr/sbin or ~/.cache.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from testground.tools import VERSIONS

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("setup.sh", "setup-python.sh", "install-debian-packages.sh", "build-go-tools.sh")
# The real commands the scripts use; the servers are deliberately not among them.
TOOLS = (
    "bash", "cat", "chmod", "cp", "cut", "date", "dirname", "env", "flock", "grep", "mkdir",
    "mktemp", "mv", "rm", "sed", "sha256sum", "sleep", "tail", "tee",
)  # fmt: skip
SERVERS = ("redis-server", "rabbitmq-server", "prometheus")
# The node's packages, each found by a command (or a file) of its own.
NODE_PACKAGES = {
    "containerd": "containerd",
    "runc": "runc",
    "containernetworking-plugins": "cni/loopback",
    "iptables": "iptables",
    "buildah": "buildah",
    "debootstrap": "debootstrap",
    "gcc": "gcc",
}
PACKAGES = (*SERVERS, *NODE_PACKAGES, "libc6-dev")
SERVICES = (*SERVERS, "containerd")
STEPS = ("python venv + packages", "debian packages", "go-built servers and tools", "node images")
# Debian container images ship this one; a machine's own policy-rc.d must survive the install.
OWN_POLICY = "#!/bin/sh\n# the machine's own policy\nexit 101\n"


@dataclass
class Machine:
    """A stand-in for a fresh machine: a clone, stub commands and what they recorded."""

    root: Path
    tools: Path
    stubs: Path
    records: Path
    policy_rc_d: Path
    rabbitmq_bin: Path
    cache: Path
    env: dict[str, str]

    def stub(self, name: str, body: str = "exit 0") -> None:
        """A command that appends its arguments (and DEBIAN_FRONTEND) to records/<name>, then
        runs body. Paths are written into the stub, since sudo clears the environment."""
        script = self.stubs / name
        script.write_text(
            "#!/bin/sh\n"
            f"policy='{self.policy_rc_d}'\n"
            f"records='{self.records}'\n"
            f'printf \'%s\\n\' "DEBIAN_FRONTEND=${{DEBIAN_FRONTEND-}} $*" >>"$records/{name}"\n'
            f"{body}\n"
        )
        script.chmod(0o755)

    def calls(self, name: str) -> list[list[str]]:
        """Each recorded call of a stub: DEBIAN_FRONTEND=..., then its arguments."""
        record = self.records / name
        return [line.split() for line in record.read_text().splitlines()] if record.exists() else []

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tools / "bash"), str(self.root / "scripts" / script)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def warm_python(self) -> None:
        """A venv whose stamp matches pyproject.toml, as setup-python.sh leaves it."""
        (self.root / ".venv" / "bin").mkdir(parents=True)
        (self.root / ".venv" / "bin" / "python").symlink_to(self.stubs / "python")
        digest = hashlib.sha256((self.root / "pyproject.toml").read_bytes()).hexdigest()
        (self.root / ".venv" / ".pyproject.sha256").write_text(digest + "\n")

    def warm_servers(self) -> None:
        for server in SERVERS:
            self.stub(server)
        for found_by in NODE_PACKAGES.values():
            if found_by.startswith("cni/"):
                plugin = Path(self.env["AUTOZERO_CNI_BIN"]) / found_by.removeprefix("cni/")
                plugin.parent.mkdir(parents=True, exist_ok=True)
                plugin.write_text("#!/bin/sh\n")
                plugin.chmod(0o755)
            else:
                self.stub(found_by)

    def warm_go_tools(self) -> None:
        built = {
            f"etcd-{VERSIONS['ETCD_VERSION']}": ["etcd"],
            f"helm-{VERSIONS['HELM_VERSION']}": ["helm"],
            f"ferretdb-{VERSIONS['FERRETDB_VERSION']}": ["ferretdb"],
            f"kubernetes-{VERSIONS['KUBERNETES_VERSION']}": [
                "kube-apiserver",
                "kube-controller-manager",
                "kubectl",
                "kubelet",
                "kube-scheduler",
            ],
        }
        for folder, binaries in built.items():
            (self.cache / "bin" / folder).mkdir(parents=True)
            for binary in binaries:
                (self.cache / "bin" / folder / binary).write_text("#!/bin/sh\n")
                (self.cache / "bin" / folder / binary).chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    root = tmp_path / "clone"
    (root / "scripts").mkdir(parents=True)
    for script in (*SCRIPTS, "versions.env"):
        shutil.copy(ROOT / "scripts" / script, root / "scripts" / script)
    (root / "pyproject.toml").write_text('[project]\nname = "clone"\n')
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run the setup scripts"
        (tools / tool).symlink_to(found)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    records = tmp_path / "records"
    records.mkdir()
    machine = Machine(
        root=root,
        tools=tools,
        stubs=stubs,
        records=records,
        policy_rc_d=tmp_path / "usr-sbin" / "policy-rc.d",
        rabbitmq_bin=tmp_path / "usr-lib-rabbitmq-bin",
        cache=tmp_path / "cache",
        env={
            "PATH": f"{stubs}:{tools}",
            "HOME": str(tmp_path / "home"),
            "AUTOZERO_CACHE": str(tmp_path / "cache"),
            "AUTOZERO_POLICY_RC_D": str(tmp_path / "usr-sbin" / "policy-rc.d"),
            "AUTOZERO_RABBITMQ_BIN": str(tmp_path / "usr-lib-rabbitmq-bin"),
            "AUTOZERO_CNI_BIN": str(tmp_path / "usr-lib-cni"),
            "AUTOZERO_SBIN": str(tmp_path / "usr-sbin-empty"),
        },
    )
    machine.policy_rc_d.parent.mkdir()
    # sudo resets the environment (keeping PATH here, where the stubs are) and runs the command.
    machine.stub("sudo", 'exec env -i PATH="$PATH" "$@"')
    machine.stub("id", 'echo "${STUB_UID:-1000}"')
    machine.stub("service")
    # apt-get runs policy-rc.d during the install, as invoke-rc.d would before starting a service.
    machine.stub(
        "apt-get",
        'if [ "$1" = install ]; then "$policy" redis-server start; '
        'echo "$?" >>"$records/policy-rc.d-during-install"; fi',
    )
    machine.stub("python")
    return machine


@pytest.mark.parametrize("user", ["root", "user"], ids=["as root", "as a user, through sudo"])
@pytest.mark.parametrize(
    "own_policy", [True, False], ids=["machine has a policy-rc.d", "machine has no policy-rc.d"]
)
def test_the_install_path_installs_the_missing_packages_and_exits_0(
    machine: Machine, user: str, own_policy: bool
) -> None:
    if own_policy:
        machine.policy_rc_d.write_text(OWN_POLICY)
        machine.policy_rc_d.chmod(0o700)
    machine.env["STUB_UID"] = "0" if user == "root" else "1000"

    done = machine.run("install-debian-packages.sh")

    assert done.returncode == 0, done.stderr
    assert "installed in" in done.stderr
    noninteractive = "DEBIAN_FRONTEND=noninteractive"
    assert machine.calls("apt-get") == [
        [noninteractive, "update", "-qq"],
        [noninteractive, "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ]
    # Whoever's policy-rc.d it is, it forbade starting services while the packages installed.
    assert (machine.records / "policy-rc.d-during-install").read_text() == "101\n"
    # Only the packages with a system service are stopped.
    assert [call[1:] for call in machine.calls("service")] == [[s, "stop"] for s in SERVICES]
    sudo_calls = [call[1:3] for call in machine.calls("sudo")]
    if user == "root":
        assert sudo_calls == []
    else:
        assert ["env", "DEBIAN_FRONTEND=noninteractive"] in sudo_calls
        assert len(sudo_calls) == len(machine.calls("apt-get")) + len(machine.calls("service")) + (
            0 if own_policy else 3  # tee, chmod and rm of the guard
        )
    if own_policy:
        assert machine.policy_rc_d.read_text() == OWN_POLICY
        assert stat.S_IMODE(machine.policy_rc_d.stat().st_mode) == 0o700
    else:
        assert not machine.policy_rc_d.exists(), "the guard policy-rc.d was left behind"


def test_only_the_missing_packages_are_installed_and_their_services_stopped(
    machine: Machine,
) -> None:
    machine.warm_servers()
    (machine.stubs / "prometheus").unlink()
    (machine.stubs / "rabbitmq-server").unlink()
    # rabbitmq-server is in /usr/sbin, often not on PATH: the package's bin dir counts too.
    machine.rabbitmq_bin.mkdir()
    (machine.rabbitmq_bin / "rabbitmq-server").write_text("#!/bin/sh\n")
    (machine.rabbitmq_bin / "rabbitmq-server").chmod(0o755)

    done = machine.run("install-debian-packages.sh")

    assert done.returncode == 0, done.stderr
    assert machine.calls("apt-get")[-1][1:] == [
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "prometheus",
    ]
    assert [call[1:] for call in machine.calls("service")] == [["prometheus", "stop"]]


def test_nothing_is_installed_when_every_server_is_present(machine: Machine) -> None:
    machine.warm_servers()

    done = machine.run("install-debian-packages.sh")

    assert done.returncode == 0, done.stderr
    assert "debian packages present" in done.stderr
    assert machine.calls("apt-get") == []
    assert machine.calls("sudo") == []


def test_a_failed_install_still_removes_the_guard(machine: Machine) -> None:
    machine.stub(
        "apt-get", 'if [ "$1" = install ]; then echo "E: stub: no space" >&2; exit 100; fi'
    )

    failed = machine.run("install-debian-packages.sh")

    assert failed.returncode == 100
    assert "E: stub: no space" in failed.stderr
    assert not machine.policy_rc_d.exists(), "the guard policy-rc.d was left behind"


def test_setup_prints_a_timing_line_per_step_and_exits_0(machine: Machine) -> None:
    machine.warm_python()
    machine.warm_servers()
    machine.warm_go_tools()

    done = machine.run("setup.sh")

    assert done.returncode == 0, done.stderr
    timed = re.findall(r"^\[setup\] (.+?) +\d+s$", done.stdout, re.M)
    assert timed == list(STEPS)
    # build-go-tools.sh prints the bin dir for the test ground; setup keeps that to its log.
    assert str(machine.cache / "bin") not in done.stdout


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        pytest.param(0, "Error: stub: ensurepip is not available", id="python step"),
        pytest.param(1, "E: stub: Unable to locate package prometheus", id="debian step"),
        pytest.param(2, "stub compile error: undefined: etcdmain", id="go step"),
    ],
)
def test_a_failing_step_names_itself_and_shows_its_output_tail(
    machine: Machine, failing: int, message: str
) -> None:
    if failing == 0:
        machine.env["PYTHON"] = str(machine.stubs / "python")
        machine.stub("python", f'echo "{message}" >&2; exit 1')
    else:
        machine.warm_python()
    if failing == 1:
        machine.stub("apt-get", f'if [ "$1" = install ]; then echo "{message}" >&2; exit 100; fi')
    else:
        machine.warm_servers()
    # The Go step: `go mod tidy` works, the build fails.
    machine.stub("go", f'if [ "$1" = build ]; then echo "{message}" >&2; exit 2; fi')

    failed = machine.run("setup.sh")

    assert failed.returncode != 0
    step = STEPS[failing]
    assert re.search(rf"^\[setup\] {re.escape(step)}: failed \(exit \d+\)", failed.stderr, re.M), (
        failed.stderr
    )
    tail = failed.stderr[failed.stderr.index(f"[setup] {step}: failed") :]
    assert message in tail
    log = re.search(r"its whole output: (\S+)", tail)
    assert log is not None, tail
    assert message in Path(log.group(1)).read_text()
    # The steps before it ran and were timed; the ones after it did not run.
    assert re.findall(r"^\[setup\] (.+?) +\d+s$", failed.stdout, re.M) == list(STEPS[:failing])
    assert (machine.calls("apt-get") != []) == (failing == 1)
    assert (machine.calls("go") != []) == (failing == 2)


def test_a_machine_without_the_nodes_packages_gets_exactly_those(machine: Machine) -> None:
    machine.warm_servers()
    for name in ("containerd", "runc", "buildah"):
        (machine.stubs / name).unlink()
    (Path(machine.env["AUTOZERO_CNI_BIN"]) / "loopback").unlink()

    done = machine.run("install-debian-packages.sh")

    assert done.returncode == 0, done.stderr
    assert machine.calls("apt-get")[-1][5:] == [
        "containerd",
        "runc",
        "containernetworking-plugins",
        "buildah",
    ]
    assert [call[1:] for call in machine.calls("service")] == [["containerd", "stop"]]
