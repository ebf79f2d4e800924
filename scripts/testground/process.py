"""Start a real server as a child process on loopback, and stop it without leaving anything behind.

Every server gets its own temporary directory and log file; a server that does not become ready
raises `ServerStartError` with the tail of its log, so a failing test says *why* it failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class ServerStartError(RuntimeError):
    """A real server could not be installed or started; the message carries its log tail."""

    def __init__(self, name: str, reason: str, log_tail: str = "") -> None:
        self.name = name
        self.reason = reason
        self.log_tail = log_tail
        detail = f"\n--- last lines of {name}'s log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{name} did not start: {reason}{detail}")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def processes_in_group(pgid: int) -> list[int]:
    """PIDs of live (non-zombie) processes whose process group is `pgid`, read from /proc."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One child process in its own session, so stopping it kills everything it spawned."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.env = dict(os.environ if env is None else env)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._proc.pid

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerStartError(self.name, f"cannot execute {self.argv[0]}: {exc}") from exc
        finally:
            log.close()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_ready(
        self, probe: Callable[[], bool], *, timeout: float, interval: float = 0.2
    ) -> float:
        """Poll `probe` until it answers True; return the seconds it took."""
        start = time.monotonic()
        deadline = start + timeout
        last_error = ""
        while time.monotonic() < deadline:
            if not self.running():
                code = self._proc.returncode if self._proc else None
                raise ServerStartError(self.name, f"exited with code {code}", tail(self.log_path))
            try:
                if probe():
                    return time.monotonic() - start
            except Exception as exc:  # the probe's own failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(interval)
        self.stop()
        reason = f"not ready after {timeout:.0f}s" + (
            f" (last probe: {last_error})" if last_error else ""
        )
        raise ServerStartError(self.name, reason, tail(self.log_path))

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after `grace` seconds."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        # Children that outlived the leader still carry its process group id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL at once: for tests of what happens when a server dies."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
            self._proc = None


def stop_child(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM a child started with Popen, SIGKILL it if it has not exited after `grace`: what
    it was running beside (servers) must be stopped after it either way."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_for(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.25) -> T:
    """Call `predicate` until it returns something truthy and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met after {timeout}s (last value: {last!r})")
        time.sleep(interval)
        last = predicate()
    return last
