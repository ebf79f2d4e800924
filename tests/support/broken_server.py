"""Loopback servers that fail the way a real apiserver sometimes does, for what no real server
can be made to do on demand: reset the connection, or answer 500.

Each serves a bounded number of connections (a client retries a few times, not forever) and
stops with its `with` block.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType


class _Server:
    """Accept on 127.0.0.1 and hand each connection to `handle`, in a thread."""

    def __init__(self, handle: Callable[[socket.socket], None], connections: int = 50) -> None:
        self._handle = handle
        self._connections = connections
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set() and self.accepted < self._connections:
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            with connection:
                connection.settimeout(2)
                self._handle(connection)

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


def _read_request(connection: socket.socket) -> None:
    """Read until the end of the request's headers (bodies here are small and ignored)."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                return
            data += chunk
    except TimeoutError:
        return


def resetting_server() -> _Server:
    """Reads each request and resets the connection (RST) without a byte of answer."""

    def reset(connection: socket.socket) -> None:
        _read_request(connection)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return _Server(reset)


def status_server(code: int, reason: str) -> _Server:
    """Answers every request with a Kubernetes `Status` of HTTP `code`."""
    body = json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}
    ).encode()

    def answer(connection: socket.socket) -> None:
        _read_request(connection)
        head = (
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        connection.sendall(head.encode() + body)

    return _Server(answer)
