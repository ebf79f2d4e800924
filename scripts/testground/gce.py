"""Talking to the GCE emulator as a user would: the real google-api-python-client, anonymous,
with the compute v1 discovery document it ships. For the tests, the demo and the benchmarks."""

from __future__ import annotations

from typing import Any


def compute_client(endpoint: str) -> Any:
    """A compute v1 service against `endpoint` (an EmulatorServer's `api_endpoint`)."""
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient import discovery

    return discovery.build(
        "compute",
        "v1",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": endpoint},
    )


def managers(compute: Any, *, zone: str | None = None) -> Any:
    """The zonal or regional instanceGroupManagers collection."""
    return compute.instanceGroupManagers() if zone else compute.regionInstanceGroupManagers()


def create_mig(
    compute: Any,
    project: str,
    name: str,
    *,
    zone: str | None = None,
    region: str | None = None,
    size: int = 0,
    template: str = "t",
) -> None:
    """A managed instance group (zonal or regional) at `size`, its operation waited for."""
    where = {"zone": zone} if zone else {"region": region}
    body = {"name": name, "instanceTemplate": template, "targetSize": size}
    op = managers(compute, zone=zone).insert(project=project, body=body, **where).execute()
    operations = compute.zoneOperations() if zone else compute.regionOperations()
    operations.wait(project=project, operation=op["name"], **where).execute()
