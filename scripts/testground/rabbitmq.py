"""A real RabbitMQ broker (Debian's rabbitmq-server) with the management plugin, on loopback.

It runs with its own epmd on its own port, so nothing it starts outlives it or meets another node,
and with its own HOME (Erlang cookie), data, log and config directories.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from testground.process import ManagedProcess, ServerStartError, free_port, port_open
from testground.scratch import scratch_dir
from testground.tools import debian_binary

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class RabbitMQServer:
    user = "guest"
    password = "guest"  # RabbitMQ lets guest in from loopback only, which is all we serve

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir or scratch_dir(self, "autozero-rabbitmq-")
        self.amqp_port = free_port()
        self.management_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = f"autozero{self.amqp_port}@localhost"
        config = self.workdir / "rabbitmq.conf"
        self.workdir.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
                    f"management.tcp.port = {self.management_port}",
                    "management.tcp.ip = 127.0.0.1",
                    "loopback_users.guest = true",
                    "log.console = true",
                    "log.console.level = warning",
                    "log.file = false",
                    # Samples refresh every second so queue depths in tests are fresh: the
                    # queues emit their counts every second, and the management API keeps them
                    # in 1 s buckets (its default is 5 s: without this, the message counts it
                    # serves lag the broker by 5 s whatever the interval).
                    "collect_statistics_interval = 1000",
                    "management.sample_retention_policies.global.minute = 1",
                    "management.sample_retention_policies.basic.minute = 1",
                    "management.sample_retention_policies.detailed.10 = 1",
                    "",
                ]
            )
        )
        (self.workdir / "enabled_plugins").write_text("[rabbitmq_management].\n")
        self.env = {
            **os.environ,
            "HOME": str(self.workdir),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.workdir / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(self.workdir / "rabbitmq.pid"),
        }
        self.epmd = ManagedProcess(
            "epmd",
            [
                str(debian_binary("epmd", "/usr/lib/erlang/bin/epmd")),
                "-port",
                str(self.epmd_port),
                "-address",
                "127.0.0.1",
            ],
            workdir=self.workdir,
            env=self.env,
        )
        self.process = ManagedProcess(
            "rabbitmq-server",
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            workdir=self.workdir,
            env=self.env,
        )

    @property
    def amqp_url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """Call the management HTTP API as guest; for tests and readiness."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.management_url}/api/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def start(self) -> float:
        debian_binary("rabbitmq-server", str(RABBITMQ_BIN / "rabbitmq-server"))
        self.epmd.start()
        self.epmd.wait_ready(lambda: port_open(self.epmd_port), timeout=10)
        self.process.start()
        try:
            return self.process.wait_ready(
                lambda: port_open(self.amqp_port) and "rabbitmq_version" in self.api("overview"),
                timeout=120,
                interval=0.5,
            )
        except ServerStartError:
            self.epmd.stop()
            raise

    def stop(self) -> None:
        self.process.stop(grace=20)
        self.epmd.stop()
