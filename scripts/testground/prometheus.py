"""A real Prometheus server (Debian's package) on loopback, scraping targets added at run time.

Targets come from a file_sd file that Prometheus watches, so a test adds a target without a restart.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from testground.process import ManagedProcess, free_port, port_open
from testground.scratch import scratch_dir
from testground.tools import debian_binary


class PrometheusServer:
    def __init__(
        self,
        workdir: Path | None = None,
        *,
        scrape_interval: str = "1s",
        web_config: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir or scratch_dir(self, "autozero-prometheus-")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.targets_file = self.workdir / "targets.json"
        self._targets: dict[str, dict[str, Any]] = {}
        self.targets_file.write_text("[]")
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {
                    "job_name": "tests",
                    "file_sd_configs": [
                        {"files": [str(self.targets_file)], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        self.web_config = web_config
        web: list[str] = []
        if web_config is not None:  # basic auth users and/or TLS, as Prometheus' web config
            web_path = self.workdir / "web.yml"
            web_path.write_text(yaml.safe_dump(web_config))
            web = [f"--web.config.file={web_path}"]
        self.process = ManagedProcess(
            "prometheus",
            [
                str(debian_binary("prometheus")),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
                *web,
            ],
            workdir=self.workdir,
        )

    @property
    def url(self) -> str:
        tls = self.web_config is not None and "tls_server_config" in self.web_config
        return f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> float:
        self.process.start()
        return self.process.wait_ready(self._ready, timeout=60)

    def _ready(self) -> bool:
        if self.web_config is not None:  # protected: an open port is as far as we can look
            return port_open(self.port)
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)

    def add_target(self, address: str, **labels: str) -> None:
        """Scrape `host:port` from now on, with extra labels."""
        self._targets[address] = {"targets": [address], "labels": labels}
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(list(self._targets.values())))
        tmp.replace(self.targets_file)

    def query(self, promql: str) -> Any:
        """An instant query through the HTTP API; returns the `data` member of the answer."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus query {promql!r} failed: {body}")
        return body["data"]

    def stop(self) -> None:
        self.process.stop()
