"""What a node leaves on the host, read and removed: processes, iptables chains, cgroups, mounts,
network interfaces and state directories.

A kubelet and containerd touch the whole machine, not only their own directories: the kubelet
creates `KUBE-*` iptables chains and the `kubepods` cgroups in every hierarchy; containerd's shims
outlive it (they are meant to) and keep their sockets under `/run/containerd`; Pods' volumes are
mounts. `HostState` is a snapshot of all of it, so a test can compare the host before a node started
with the host after it stopped; `Leftovers` removes what a stopped node left, by its own names only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The cgroups a kubelet (cgroupfs driver) and containerd create at the top of each hierarchy.
NODE_CGROUPS = ("kubepods", "kubepods.slice", "k8s.io")
#: Host paths a kubelet, containerd and their plugins use whatever their configuration says.
HOST_PATHS = (
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni",
    "/var/lib/containers",
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
)
IPTABLES = ("iptables", "ip6tables")
IPTABLES_TABLES = ("filter", "nat", "mangle")


def mountpoints() -> set[str]:
    points = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.add(line.split()[4].replace("\\040", " "))
    return points


def interfaces() -> set[str]:
    return {path.name for path in Path("/sys/class/net").iterdir()}


def cgroup_hierarchies() -> list[Path]:
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def node_cgroups() -> set[str]:
    """The node's top-level cgroups that exist, as "hierarchy/name"."""
    return {
        f"{hierarchy.name}/{name}"
        for hierarchy in cgroup_hierarchies()
        for name in NODE_CGROUPS
        if (hierarchy / name).is_dir()
    }


def iptables_chains() -> set[str]:
    """Every chain of every table, as "iptables/filter/KUBE-FIREWALL"."""
    chains = set()
    for tool in IPTABLES:
        if shutil.which(tool) is None:
            continue
        for table in IPTABLES_TABLES:
            rules = _iptables(tool, table, "-S")
            for line in rules.splitlines():
                fields = line.split()
                if fields[:1] in (["-N"], ["-P"]):
                    chains.add(f"{tool}/{table}/{fields[1]}")
    return chains


def _iptables(tool: str, table: str, *args: str) -> str:
    proc = subprocess.run(
        [tool, "-w", "5", "-t", table, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} -t {table} {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def processes_matching(needles: Iterable[str]) -> dict[int, str]:
    """Live processes whose command line or cgroup names one of `needles`: pid -> command line."""
    wanted = tuple(needles)
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroups = (entry / "cgroup").read_text()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        if any(needle in cmdline or needle in cgroups for needle in wanted):
            found[int(entry.name)] = cmdline.strip()
    return found


def processes_named(name: str) -> dict[int, str]:
    """Live processes whose command name is `name`: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found[int(entry.name)] = cmdline.strip()
    return found


def remove_stale_node_cgroups() -> None:
    """The kubepods cgroups a node that crashed left (no kubelet runs): empty, so removable."""
    for item in sorted(node_cgroups()):
        hierarchy, name = item.split("/", 1)
        _rmdir_tree(CGROUP_ROOT / hierarchy / name)


@dataclass(frozen=True)
class HostState:
    """What a node could leave behind, at one moment."""

    processes: frozenset[str]
    mounts: frozenset[str]
    interfaces: frozenset[str]
    cgroups: frozenset[str]
    iptables: frozenset[str]
    paths: frozenset[str]

    def added_since(self, before: HostState) -> dict[str, list[str]]:
        """What this state has and `before` had not, per kind (only the kinds with some)."""
        added = {}
        for kind in ("processes", "mounts", "interfaces", "cgroups", "iptables", "paths"):
            new = sorted(getattr(self, kind) - getattr(before, kind))
            if new:
                added[kind] = new
        return added


def host_state(needles: Iterable[str]) -> HostState:
    """The host now; `needles` pick the node's processes (its directories, its socket)."""
    return HostState(
        processes=frozenset(
            f"{pid} {cmd[:200]}" for pid, cmd in processes_matching(needles).items()
        ),
        mounts=frozenset(mountpoints()),
        interfaces=frozenset(interfaces()),
        cgroups=frozenset(node_cgroups()),
        iptables=frozenset(iptables_chains()),
        paths=frozenset(p for p in HOST_PATHS if os.path.lexists(p)),
    )


class Leftovers:
    """Removes what a stopped node left, comparing with the host as it was before the node."""

    def __init__(self, before: HostState, needles: Iterable[str], roots: Iterable[Path]) -> None:
        self.before = before
        self.needles = tuple(needles)
        self.roots = tuple(roots)

    def remove(self) -> None:
        self.kill_processes()
        self.unmount()
        self.remove_cgroups()
        self.remove_iptables_chains()
        self.remove_paths()

    def kill_processes(self) -> None:
        """containerd's shims and the containers they run outlive containerd: SIGKILL them."""
        for _ in range(50):
            found = processes_matching(self.needles)
            if not found:
                return
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        raise RuntimeError(f"processes of the node survive SIGKILL: {found}")

    def unmount(self) -> None:
        """Pods' volumes, the kubelet's bind mounts, containerd's snapshots and netns files."""
        prefixes = [str(root).rstrip("/") for root in self.roots]
        prefixes += [p for p in HOST_PATHS if p not in self.before.paths]
        for _ in range(5):
            points = sorted(
                (
                    point
                    for point in mountpoints() - self.before.mounts
                    if any(point == p or point.startswith(p + "/") for p in prefixes)
                ),
                key=lambda point: point.count("/"),
                reverse=True,
            )
            if not points:
                return
            for point in points:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        raise RuntimeError(f"mounts of the node could not be unmounted: {points}")

    def remove_cgroups(self) -> None:
        for item in sorted(node_cgroups() - self.before.cgroups):
            hierarchy, name = item.split("/", 1)
            _rmdir_tree(CGROUP_ROOT / hierarchy / name)

    def remove_iptables_chains(self) -> None:
        """The kubelet's KUBE-* chains, with the rules that jump to them."""
        new = iptables_chains() - self.before.iptables
        for item in sorted(new):
            tool, table, chain = item.split("/", 2)
            if not chain.startswith("KUBE-"):
                continue
            for rule in _iptables(tool, table, "-S").splitlines():
                fields = rule.split()
                if fields[:1] == ["-A"] and f"-j {chain}" in rule and fields[1] != chain:
                    _iptables(tool, table, "-D", *fields[1:])
        for item in sorted(new):
            tool, table, chain = item.split("/", 2)
            if chain.startswith("KUBE-"):
                _iptables(tool, table, "-F", chain)
        for item in sorted(new):
            tool, table, chain = item.split("/", 2)
            if chain.startswith("KUBE-"):
                _iptables(tool, table, "-X", chain)

    def remove_paths(self) -> None:
        for path in HOST_PATHS:
            if path not in self.before.paths and os.path.lexists(path):
                shutil.rmtree(path)


def _rmdir_tree(directory: Path) -> None:
    """Remove a cgroup and its children, leaves first (cgroup files cannot be unlinked)."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.is_dir():
            _rmdir_tree(child)
    for attempt in range(50):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == 49:
                raise
            time.sleep(0.1)  # the last process in it is still exiting
