"""A real MongoDB-wire server: FerretDB (built from Go modules) on SQLite, on loopback.

MRQ keeps regular queues and started jobs in MongoDB; FerretDB speaks the same wire protocol,
so pymongo talks to it as it would to MongoDB.
"""

from __future__ import annotations

from pathlib import Path

from testground.process import ManagedProcess, free_port, port_open
from testground.scratch import scratch_dir
from testground.tools import VERSIONS, go_tools


class FerretDBServer:
    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or scratch_dir(self, "autozero-ferretdb-")
        self.port = free_port()
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        binary = go_tools().kubectl.parent.parent / f"ferretdb-{VERSIONS['FERRETDB_VERSION']}"
        self.process = ManagedProcess(
            "ferretdb",
            [
                str(binary / "ferretdb"),
                "--handler=sqlite",
                f"--sqlite-url=file:{data}/",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--debug-addr=127.0.0.1:{free_port()}",
                f"--state-dir={self.workdir}",
                "--telemetry=disable",
                "--log-level=warn",
            ],
            workdir=self.workdir,
        )

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/mrq"

    def start(self) -> float:
        self.process.start()
        return self.process.wait_ready(lambda: port_open(self.port), timeout=30)

    def stop(self) -> None:
        self.process.stop()
