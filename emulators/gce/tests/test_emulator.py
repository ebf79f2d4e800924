"""The emulator through the real google-api-python-client only: what autozero relies on."""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any

import pytest
from gce_emulator import EmulatorServer
from googleapiclient.errors import HttpError

P, Z, R = "acme", "europe-west1-c", "europe-west1"
TEMPLATE = "projects/acme/global/instanceTemplates/worker"


def wait(compute: Any, op: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "zone" in op:
            op = (
                compute.zoneOperations()
                .wait(project=P, zone=op["zone"].rsplit("/", 1)[1], operation=op["name"])
                .execute()
            )
        else:
            op = (
                compute.regionOperations()
                .wait(project=P, region=op["region"].rsplit("/", 1)[1], operation=op["name"])
                .execute()
            )
        if op["status"] == "DONE":
            return op


def make_group(compute: Any, name: str, size: int = 0, *, region: bool = False) -> dict[str, Any]:
    body = {"name": name, "instanceTemplate": TEMPLATE, "targetSize": size}
    if region:
        op = compute.regionInstanceGroupManagers().insert(project=P, region=R, body=body).execute()
    else:
        op = compute.instanceGroupManagers().insert(project=P, zone=Z, body=body).execute()
    return wait(compute, op)


def group_link(compute: Any, name: str) -> str:
    return str(
        compute.instanceGroupManagers()
        .get(project=P, zone=Z, instanceGroupManager=name)
        .execute()["selfLink"]
    )


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(HttpError) as raised:
        call.execute(num_retries=0)
    details = raised.value.error_details
    reason = details[0]["reason"] if isinstance(details, list) and details else ""
    return raised.value.resp.status, reason


def until(predicate: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met")


def test_insert_returns_a_pending_operation_that_completes(compute: Any) -> None:
    op = (
        compute.instanceGroupManagers()
        .insert(
            project=P, zone=Z, body={"name": "bids", "instanceTemplate": TEMPLATE, "targetSize": 2}
        )
        .execute()
    )
    assert op["kind"] == "compute#operation"
    assert op["status"] == "PENDING"
    assert op["operationType"] == "insert"
    assert op["targetLink"].endswith(f"projects/{P}/zones/{Z}/instanceGroupManagers/bids")
    # Not there until the operation is done.
    assert error_of(
        compute.instanceGroupManagers().get(project=P, zone=Z, instanceGroupManager="bids")
    ) == (404, "notFound")
    done = wait(compute, op)
    assert done["status"] == "DONE"
    assert "error" not in done
    assert "endTime" in done
    group = (
        compute.instanceGroupManagers()
        .get(project=P, zone=Z, instanceGroupManager="bids")
        .execute()
    )
    assert group["targetSize"] == 2
    assert group["baseInstanceName"] == "bids"


def test_resize_creates_and_deletes_instances_over_time(compute: Any) -> None:
    make_group(compute, "bids", 0)
    igm = compute.instanceGroupManagers()
    op = igm.resize(project=P, zone=Z, instanceGroupManager="bids", size=3).execute()
    assert op["operationType"] == "compute.instanceGroupManagers.resize"
    wait(compute, op)
    group = igm.get(project=P, zone=Z, instanceGroupManager="bids").execute()
    assert group["targetSize"] == 3
    assert group["currentActions"]["creating"] == 3
    assert group["status"]["isStable"] is False

    def stable() -> dict[str, Any] | None:
        g = igm.get(project=P, zone=Z, instanceGroupManager="bids").execute()
        return g if g["status"]["isStable"] else None

    assert until(stable)["currentActions"]["none"] == 3
    listed = igm.listManagedInstances(project=P, zone=Z, instanceGroupManager="bids").execute()
    assert [m["currentAction"] for m in listed["managedInstances"]] == ["NONE"] * 3
    wait(compute, igm.resize(project=P, zone=Z, instanceGroupManager="bids", size=0).execute())
    gone = until(
        lambda: (
            "managedInstances"
            not in igm.listManagedInstances(
                project=P, zone=Z, instanceGroupManager="bids"
            ).execute()
        )
    )
    assert gone


def test_request_id_makes_a_mutation_idempotent(compute: Any) -> None:
    make_group(compute, "bids")
    igm = compute.instanceGroupManagers()
    first = igm.resize(
        project=P,
        zone=Z,
        instanceGroupManager="bids",
        size=2,
        requestId="7b0b2a7e-0000-4000-8000-000000000001",
    ).execute()
    second = igm.resize(
        project=P,
        zone=Z,
        instanceGroupManager="bids",
        size=2,
        requestId="7b0b2a7e-0000-4000-8000-000000000001",
    ).execute()
    assert first["name"] == second["name"]


def test_list_paginates_and_filters(compute: Any) -> None:
    for n in range(7):
        make_group(compute, f"group-{n}")
    igm = compute.instanceGroupManagers()
    names: list[str] = []
    request = igm.list(project=P, zone=Z, maxResults=3)
    pages = 0
    while request is not None:
        page = request.execute()
        pages += 1
        names += [g["name"] for g in page.get("items", [])]
        request = igm.list_next(request, page)
    assert pages == 3
    assert names == [f"group-{n}" for n in range(7)]
    one = igm.list(project=P, zone=Z, filter='name = "group-4"').execute()
    assert [g["name"] for g in one["items"]] == ["group-4"]
    regex = igm.list(project=P, zone=Z, filter="name eq group-[12]").execute()
    assert [g["name"] for g in regex["items"]] == ["group-1", "group-2"]


def test_aggregated_list_covers_zones_and_regions(compute: Any) -> None:
    make_group(compute, "zonal")
    make_group(compute, "regional", region=True)
    answer = compute.instanceGroupManagers().aggregatedList(project=P).execute()
    assert set(answer["items"]) == {f"zones/{Z}", f"regions/{R}"}
    assert answer["items"][f"regions/{R}"]["instanceGroupManagers"][0]["name"] == "regional"


def test_autoscaler_lifecycle_and_the_resize_it_forbids(compute: Any) -> None:
    make_group(compute, "bids", 0)
    autoscalers = compute.autoscalers()
    link = group_link(compute, "bids")
    body = {
        "name": "bids",
        "target": link,
        "autoscalingPolicy": {
            "minNumReplicas": 1,
            "maxNumReplicas": 5,
            "coolDownPeriodSec": 180,
            "cpuUtilization": {"utilizationTarget": 0.8},
        },
    }
    wait(compute, autoscalers.insert(project=P, zone=Z, body=body).execute())
    igm = compute.instanceGroupManagers()
    managed = igm.get(project=P, zone=Z, instanceGroupManager="bids").execute()
    assert managed["status"]["autoscaler"].endswith(f"zones/{Z}/autoscalers/bids")
    # An autoscaled group cannot be resized (412 conditionNotMet) until the mode is OFF.
    assert error_of(igm.resize(project=P, zone=Z, instanceGroupManager="bids", size=0)) == (
        412,
        "conditionNotMet",
    )
    # The autoscaler drives the size: at minNumReplicas with no load.
    until(
        lambda: igm.get(project=P, zone=Z, instanceGroupManager="bids").execute()["targetSize"] == 1
    )
    wait(
        compute,
        autoscalers.patch(
            project=P, zone=Z, autoscaler="bids", body={"autoscalingPolicy": {"mode": "OFF"}}
        ).execute(),
    )
    got = autoscalers.get(project=P, zone=Z, autoscaler="bids").execute()
    assert got["autoscalingPolicy"]["mode"] == "OFF"
    assert got["autoscalingPolicy"]["maxNumReplicas"] == 5  # patch merges
    wait(compute, igm.resize(project=P, zone=Z, instanceGroupManager="bids", size=0).execute())
    wait(compute, autoscalers.delete(project=P, zone=Z, autoscaler="bids").execute())
    managed = igm.get(project=P, zone=Z, instanceGroupManager="bids").execute()
    assert "autoscaler" not in managed["status"]
    assert error_of(autoscalers.get(project=P, zone=Z, autoscaler="bids")) == (404, "notFound")


def test_autoscaler_scales_on_cpu(compute: Any, emulator: EmulatorServer) -> None:
    make_group(compute, "bids", 1)
    link = group_link(compute, "bids")
    wait(
        compute,
        compute.autoscalers()
        .insert(
            project=P,
            zone=Z,
            body={
                "name": "bids",
                "target": link,
                "autoscalingPolicy": {
                    "minNumReplicas": 1,
                    "maxNumReplicas": 6,
                    "cpuUtilization": {"utilizationTarget": 0.5},
                },
            },
        )
        .execute(),
    )
    emulator.control("cpu", {"project": P, "location": Z, "group": "bids", "utilization": 1.0})
    size = until(
        lambda: (
            compute.instanceGroupManagers()
            .get(project=P, zone=Z, instanceGroupManager="bids")
            .execute()["targetSize"]
            >= 4
        )
    )
    assert size


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        pytest.param({"minNumReplicas": 5, "maxNumReplicas": 2}, "invalid", id="min-above-max"),
        pytest.param({"minNumReplicas": 0}, "invalid", id="no-max"),
        pytest.param({"maxNumReplicas": 2, "mode": "SOMETIMES"}, "invalid", id="bad-mode"),
    ],
)
def test_autoscaler_policy_errors(compute: Any, policy: dict[str, Any], reason: str) -> None:
    make_group(compute, "bids")
    link = group_link(compute, "bids")
    call = compute.autoscalers().insert(
        project=P, zone=Z, body={"name": "bids", "target": link, "autoscalingPolicy": policy}
    )
    assert error_of(call) == (400, reason)


def test_conflicts_and_missing_resources(compute: Any) -> None:
    make_group(compute, "bids")
    igm = compute.instanceGroupManagers()
    assert error_of(
        igm.insert(project=P, zone=Z, body={"name": "bids", "instanceTemplate": TEMPLATE})
    ) == (409, "alreadyExists")
    assert error_of(igm.resize(project=P, zone=Z, instanceGroupManager="ghost", size=1)) == (
        404,
        "notFound",
    )
    assert error_of(
        igm.insert(project=P, zone=Z, body={"name": "Bad_Name", "instanceTemplate": TEMPLATE})
    ) == (400, "invalid")
    assert error_of(compute.zoneOperations().get(project=P, zone=Z, operation="nope")) == (
        404,
        "notFound",
    )


def test_rate_quota_answers_403_rate_limit_exceeded(compute: Any, emulator: EmulatorServer) -> None:
    emulator.control("settings", {"requestsPerMinute": 3})
    igm = compute.instanceGroupManagers()
    for _ in range(3):
        igm.list(project=P, zone=Z).execute()
    status, reason = error_of(igm.list(project=P, zone=Z))
    assert (status, reason) == (403, "rateLimitExceeded")


def test_injected_faults_and_the_request_log(compute: Any, emulator: EmulatorServer) -> None:
    emulator.control("faults", {"rate": 1.0, "codes": [503], "seed": 1})
    assert error_of(compute.instanceGroupManagers().list(project=P, zone=Z)) == (
        503,
        "backendError",
    )
    emulator.control("faults", {"rate": 0.0})
    compute.instanceGroupManagers().list(project=P, zone=Z).execute()
    log = emulator.control("requests", method="GET")["requests"]
    assert [(r["api"], r["status"]) for r in log] == [
        ("instanceGroupManagers.list", 503),
        ("instanceGroupManagers.list", 200),
    ]


def test_faults_can_be_limited_to_some_methods(compute: Any, emulator: EmulatorServer) -> None:
    """`apis`: only those methods fail (a write refused while the reads around it answer)."""
    emulator.control("faults", {"rate": 1.0, "codes": [429], "apis": ["instanceGroupManagers.get"]})
    compute.instanceGroupManagers().list(project=P, zone=Z).execute()
    status, _ = error_of(
        compute.instanceGroupManagers().get(project=P, zone=Z, instanceGroupManager="x")
    )
    emulator.control("faults", {"rate": 0.0})
    assert status == 429


def test_wait_returns_undone_after_its_bound(compute: Any, emulator: EmulatorServer) -> None:
    emulator.control("settings", {"operationSeconds": 3.0, "waitTimeoutSeconds": 0.3})
    make = (
        compute.instanceGroupManagers()
        .insert(project=P, zone=Z, body={"name": "slow", "instanceTemplate": TEMPLATE})
        .execute()
    )
    started = time.monotonic()
    answer = compute.zoneOperations().wait(project=P, zone=Z, operation=make["name"]).execute()
    assert answer["status"] in ("PENDING", "RUNNING")
    assert time.monotonic() - started < 2


def test_regional_groups_and_operations(compute: Any) -> None:
    make_group(compute, "regional", 1, region=True)
    rigm = compute.regionInstanceGroupManagers()
    op = rigm.resize(project=P, region=R, instanceGroupManager="regional", size=4).execute()
    assert "region" in op
    assert "zone" not in op
    wait(compute, op)
    assert (
        rigm.get(project=P, region=R, instanceGroupManager="regional").execute()["targetSize"] == 4
    )


def test_each_running_instance_runs_the_configured_command(
    compute: Any, emulator: EmulatorServer, tmp_path: Any
) -> None:
    marker = tmp_path / "alive"
    marker.mkdir()
    script = (
        f"import os, pathlib, time; p = pathlib.Path({str(marker)!r}) / "
        "os.environ['GCE_INSTANCE']; p.write_text('x'); time.sleep(600)"
    )
    emulator.control("settings", {"instanceCommand": [sys.executable, "-c", script]})
    make_group(compute, "workers", 2)
    until(lambda: len(list(marker.iterdir())) == 2)
    state = emulator.control("state", method="GET")["groups"][0]
    assert all(i["pid"] for i in state["instances"])
    wait(
        compute,
        compute.instanceGroupManagers()
        .resize(project=P, zone=Z, instanceGroupManager="workers", size=0)
        .execute(),
    )
    until(lambda: not emulator.control("state", method="GET")["groups"][0]["instances"])


def test_the_console_script_serves_until_terminated() -> None:
    import shutil
    import signal
    import socket
    import subprocess

    from google.auth.credentials import AnonymousCredentials
    from googleapiclient import discovery

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = shutil.which("gce-emulator") or str(
        __import__("pathlib").Path(sys.executable).parent / "gce-emulator"
    )
    process = subprocess.Popen(
        [script, "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert f"http://127.0.0.1:{port}" in line
        client = discovery.build(
            "compute",
            "v1",
            credentials=AnonymousCredentials(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": f"http://127.0.0.1:{port}/compute/v1/"},
        )
        assert client.instanceGroupManagers().list(project=P, zone=Z).execute()["kind"] == (
            "compute#instanceGroupManagerList"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_a_failed_insert_frees_its_name(compute: Any, emulator: EmulatorServer) -> None:
    """An insert whose operation ends in error leaves no resource and reserves no name: the
    next insert is made (a name kept reserved answered 409 to inserts and 404 to patches for
    good, and autozero retried both every second in the chaos campaign)."""
    make_group(compute, "bids", 0)
    link = group_link(compute, "bids")
    body = {
        "name": "bids",
        "target": link,
        "autoscalingPolicy": {"minNumReplicas": 1, "maxNumReplicas": 2},
    }
    emulator.control("settings", {"failedOperations": 1.0})
    failed = wait(compute, compute.autoscalers().insert(project=P, zone=Z, body=body).execute())
    assert failed.get("error")
    spare = {"name": "spare", "instanceTemplate": TEMPLATE, "targetSize": 0}
    groups = compute.instanceGroupManagers()
    assert wait(compute, groups.insert(project=P, zone=Z, body=spare).execute()).get("error")
    emulator.control("settings", {"failedOperations": 0.0})
    done = wait(compute, compute.autoscalers().insert(project=P, zone=Z, body=body).execute())
    assert "error" not in done
    assert compute.autoscalers().get(project=P, zone=Z, autoscaler="bids").execute()["name"]
    assert "error" not in wait(compute, groups.insert(project=P, zone=Z, body=spare).execute())


def test_a_client_that_gives_up_is_no_traceback(
    emulator: EmulatorServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """A client gone before a slow answer (its timeout) is what a real API sees daily: the
    emulator keeps it in its request log, and prints nothing."""
    emulator.control("faults", {"latencyMs": 300})
    for _ in range(3):
        with socket.create_connection((emulator.host, emulator.port), timeout=5) as sock:
            path = f"/compute/v1/projects/{P}/zones/{Z}/instanceGroupManagers"
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(1.0)
    emulator.control("faults", {})
    log = emulator.control("requests", method="GET")["requests"]
    assert [r["api"] for r in log] == ["instanceGroupManagers.list"] * 3
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
