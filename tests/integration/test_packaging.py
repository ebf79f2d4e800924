"""What the image ships: the wheel the Dockerfile installs, and the Dockerfile's own promises.

No container runtime exists here, so the image itself is not built; its build stage is `pip
install .`, and this builds that same wheel, installs it apart from the editable checkout, and
runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_is_complete_and_runs_on_its_own(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("autozero-*.whl")
    target = tmp_path / "site"
    install = ["install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    subprocess.run(
        [sys.executable, "-m", "pip", *install],
        check=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
        )

    where = run("-c", "import autozero; print(autozero.__file__)")
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr
    assert (target / "autozero" / "py.typed").exists()
    assert run("-m", "autozero.cli", "--version").returncode == 0
    checked = run("-m", "autozero.cli", "validate", "-f", str(ROOT / "examples"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    crd = run("-m", "autozero.policy.schema", "crd")
    assert crd.stdout == (ROOT / "crds" / "scalingpolicies.autozero.dev.yaml").read_text()
    assert list(target.glob("autozero-*.dist-info/licenses/LICENSE"))
    # The kubectl plugin: pip makes an executable `kubectl-autozero` of this entry point.
    (entry_points,) = target.glob("autozero-*.dist-info/entry_points.txt")
    assert "kubectl-autozero = autozero.explain.plugin:main" in entry_points.read_text()
    plugin = run("-m", "autozero.explain.plugin", "explain", "--help")
    assert plugin.stdout.startswith("usage: kubectl autozero explain"), plugin.stderr


def test_the_dockerfile_copies_what_exists_and_runs_as_the_charts_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
        *sources, _destination = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)
    deployment = (ROOT / "charts" / "autozero" / "templates" / "deployment.yaml").read_text()
    security = re.search(r"runAsUser: (\d+)", deployment)
    assert security is not None
    assert user[0] == security.group(1) != "0"
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+$", dockerfile, re.M)
    assert 'ENTRYPOINT ["autozero"]' in dockerfile
    # The chart's first argument is the subcommand the image's entrypoint runs.
    assert re.search(r"args:\n\s+- operator\n", deployment)
