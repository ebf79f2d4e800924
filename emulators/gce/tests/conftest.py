from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gce_emulator import EmulatorServer, Settings
from google.auth.credentials import AnonymousCredentials
from googleapiclient import discovery


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        settings=Settings(
            operation_seconds=0.2,
            instance_boot_seconds=0.2,
            instance_stop_seconds=0.1,
            autoscaler_period_seconds=0.2,
        )
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def compute(emulator: EmulatorServer) -> Any:
    """The real google-api-python-client, with the compute v1 discovery document it ships."""
    return discovery.build(
        "compute",
        "v1",
        credentials=AnonymousCredentials(),
        static_discovery=True,
        client_options={"api_endpoint": emulator.api_endpoint},
        cache_discovery=False,
    )
