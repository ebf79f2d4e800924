"""A real Redis server (Debian's redis-server) on a free loopback port, with its own data dir."""

from __future__ import annotations

import socket
from pathlib import Path

from testground.process import ManagedProcess, free_port
from testground.scratch import scratch_dir
from testground.tools import debian_binary


def _ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


class RedisServer:
    def __init__(
        self, workdir: Path | None = None, *, password: str | None = None, persist: bool = False
    ) -> None:
        """`persist`: an append-only file in `workdir`, so that the data outlives a stop and a
        start (an outage measured as an outage, not as a queue that came back empty)."""
        self.workdir = workdir or scratch_dir(self, "autozero-redis-")
        self.port = free_port()
        self.password = password
        argv = [
            str(debian_binary("redis-server")),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "yes" if persist else "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        if password:
            argv += ["--requirepass", password]
        self.process = ManagedProcess("redis-server", argv, workdir=self.workdir)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> float:
        self.process.start()
        # With a password, PING answers -NOAUTH; an open port that speaks RESP is ready enough.
        probe = (lambda: _ping(self.port)) if not self.password else (lambda: _resp(self.port))
        return self.process.wait_ready(probe, timeout=30)

    def stop(self) -> None:
        self.process.stop()


def _resp(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)[:1] in (b"+", b"-")
