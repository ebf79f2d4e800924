"""Find (and, on a cold machine, build or install) the real server binaries.

The shell scripts beside this package do the work and are idempotent; this module only runs them
and returns paths, so the test fixtures and the demo share one way of getting a server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from testground.process import ServerStartError

SCRIPTS = Path(__file__).resolve().parent.parent


def _versions() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (SCRIPTS / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
    return values


VERSIONS = _versions()


def cache_dir() -> Path:
    return Path(os.environ.get("AUTOZERO_CACHE", Path.home() / ".cache" / "autozero"))


@dataclass(frozen=True)
class GoTools:
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    etcd: Path
    helm: Path


@cache
def go_tools() -> GoTools:
    """Build (cold) or find (warm) the Go-built servers; ServerStartError if the build fails."""
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "build-go-tools.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ServerStartError("go tools", "scripts/build-go-tools.sh failed", proc.stderr[-4000:])
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    kube = bin_dir / f"kubernetes-{VERSIONS['KUBERNETES_VERSION']}"
    return GoTools(
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kubectl=kube / "kubectl",
        etcd=bin_dir / f"etcd-{VERSIONS['ETCD_VERSION']}" / "etcd",
        helm=bin_dir / f"helm-{VERSIONS['HELM_VERSION']}" / "helm",
    )


@dataclass(frozen=True)
class KedaTools:
    operator: Path
    crds: Path  # KEDA's config/crd/bases, from the same module version


@cache
def keda_tools() -> KedaTools:
    """Build (cold, ~7 min) or find KEDA's operator: only the KEDA comparison asks for it."""
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "build-go-tools.sh"), "--keda"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ServerStartError(
            "keda", "scripts/build-go-tools.sh --keda failed", proc.stderr[-4000:]
        )
    home = Path(proc.stdout.strip().splitlines()[-1]) / f"keda-{VERSIONS['KEDA_VERSION']}"
    return KedaTools(operator=home / "keda-operator", crds=home / "crds")


@cache
def debian_packages() -> None:
    """Install Redis, RabbitMQ and Prometheus from Debian's packages if they are missing."""
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "install-debian-packages.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ServerStartError(
            "debian packages", "scripts/install-debian-packages.sh failed", proc.stderr[-4000:]
        )


def debian_binary(name: str, *candidates: str) -> Path:
    debian_packages()
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return Path(found)
    raise ServerStartError(
        name, f"{name} is not installed after scripts/install-debian-packages.sh"
    )
