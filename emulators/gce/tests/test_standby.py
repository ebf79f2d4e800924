"""Standby pools (suspended and stopped VMs) through the real google-api-python-client only."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from gce_emulator import EmulatorServer
from googleapiclient.errors import HttpError

P, Z, R = "acme", "europe-west1-c", "europe-west1"
TEMPLATE = "projects/acme/global/instanceTemplates/worker"


def wait(compute: Any, op: dict[str, Any]) -> dict[str, Any]:
    while op["status"] != "DONE":
        if "zone" in op:
            call = compute.zoneOperations().wait(project=P, zone=Z, operation=op["name"])
        else:
            call = compute.regionOperations().wait(project=P, region=R, operation=op["name"])
        op = call.execute()
    return op


def make_group(compute: Any, name: str, size: int = 0, *, region: bool = False) -> None:
    body = {"name": name, "instanceTemplate": TEMPLATE, "targetSize": size}
    igm = compute.regionInstanceGroupManagers() if region else compute.instanceGroupManagers()
    wait(
        compute,
        igm.insert(project=P, body=body, **({"region": R} if region else {"zone": Z})).execute(),
    )


def until(predicate: Any, timeout: float = 20) -> Any:
    """Poll for a state (never a timing assertion: the bound only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met: {predicate}")


class Group:
    """One zonal or regional group, through the collection that serves its kind."""

    def __init__(self, compute: Any, name: str, regional: bool) -> None:
        self.name, self.regional = name, regional
        self.compute = compute
        self.igm = (
            compute.regionInstanceGroupManagers() if regional else compute.instanceGroupManagers()
        )
        self.scope = {"region": R} if regional else {"zone": Z}

    def call(self, method: str, **kwargs: Any) -> Any:
        return getattr(self.igm, method)(
            project=P, instanceGroupManager=self.name, **self.scope, **kwargs
        )

    def run(self, method: str, **kwargs: Any) -> dict[str, Any]:
        return wait(self.compute, self.call(method, **kwargs).execute())

    def get(self) -> dict[str, Any]:
        return dict(self.call("get").execute())

    def instances(self) -> list[dict[str, Any]]:
        return list(self.call("listManagedInstances").execute().get("managedInstances", []))

    def statuses(self) -> list[str]:
        return sorted(m["instanceStatus"] for m in self.instances())

    def stable(self) -> dict[str, Any] | None:
        group = self.get()
        return group if group["status"]["isStable"] else None


def error_body(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HttpError) as raised:
        call.execute(num_retries=0)
    return raised.value.resp.status, json.loads(raised.value.content)["error"]


KINDS = [pytest.param(False, id="zonal"), pytest.param(True, id="regional")]


@pytest.fixture
def slow_pool(emulator: EmulatorServer) -> None:
    """Transitions long enough that their intermediate states are seen by polling for them."""
    emulator.control(
        "settings",
        {"instanceSuspendSeconds": 1.0, "instanceResumeSeconds": 1.0, "instanceStartSeconds": 1.0},
    )


@pytest.mark.parametrize("regional", KINDS)
def test_suspend_then_resume_moves_instances_between_the_targets(
    compute: Any, regional: bool, slow_pool: None
) -> None:
    make_group(compute, "warm", 2, region=regional)
    group = Group(compute, "warm", regional)
    until(group.stable)
    first = group.instances()[0]
    op = group.run("suspendInstances", body={"instances": [first["instance"]]})
    assert op["operationType"] == "compute.instanceGroupManagers.suspendInstances"
    assert "error" not in op
    after = group.get()
    assert (after["targetSize"], after["targetSuspendedSize"]) == (1, 1)
    # The operation is DONE before the VM is: the action shows, then the status.
    until(lambda: group.get()["currentActions"]["suspending"] == 1)
    until(lambda: group.statuses() == ["RUNNING", "SUSPENDING"])
    until(lambda: group.statuses() == ["RUNNING", "SUSPENDED"])
    settled = until(group.stable)
    assert settled["currentActions"]["none"] == 1  # `none` counts running instances only

    group.run("resumeInstances", body={"instances": [first["instance"]]})
    after = group.get()
    assert (after["targetSize"], after["targetSuspendedSize"]) == (2, 0)
    until(lambda: group.get()["currentActions"]["resuming"] == 1)
    until(lambda: group.statuses() == ["RUNNING", "RUNNING"])
    assert first["name"] in {m["name"] for m in group.instances()}  # the same VM, not a new one


@pytest.mark.parametrize("regional", KINDS)
def test_stop_then_start_moves_instances_between_the_targets(
    compute: Any, regional: bool, slow_pool: None
) -> None:
    make_group(compute, "cold", 1, region=regional)
    group = Group(compute, "cold", regional)
    until(group.stable)
    only = group.instances()[0]
    group.run("stopInstances", body={"instances": [only["instance"]]})
    after = group.get()
    assert (after["targetSize"], after["targetStoppedSize"]) == (0, 1)
    until(lambda: group.statuses() == ["TERMINATED"])
    group.run("startInstances", body={"instances": [only["instance"]]})
    until(lambda: group.get()["currentActions"]["starting"] == 1)
    until(lambda: group.statuses() == ["RUNNING"])
    assert group.get()["targetStoppedSize"] == 0


@pytest.mark.parametrize(
    ("method", "wanted", "past"),
    [
        pytest.param("resumeInstances", "SUSPENDED", "resumed", id="resume-a-running-one"),
        pytest.param("startInstances", "TERMINATED", "started", id="start-a-running-one"),
    ],
)
def test_moving_an_instance_in_the_wrong_status_is_a_400(
    compute: Any, method: str, wanted: str, past: str
) -> None:
    make_group(compute, "bids", 1)
    group = Group(compute, "bids", False)
    until(group.stable)
    url = group.instances()[0]["instance"]
    status, error = error_body(group.call(method, body={"instances": [url]}))
    assert status == 400
    assert error["errors"][0]["reason"] == "invalid"
    assert f"only {wanted} instances" in error["message"]
    assert f"cannot be {past}:" in error["message"]
    assert group.get()["targetSize"] == 1  # nothing changed


@pytest.mark.parametrize(
    ("method", "body", "field"),
    [
        pytest.param(
            "suspendInstances",
            {"instances": ["zones/europe-west1-c/instances/stranger"]},
            "'instances'",
            id="not-a-member",
        ),
        pytest.param("suspendInstances", {"instances": []}, "'instances'", id="no-instances"),
        pytest.param(
            "patch",
            {"standbyPolicy": {"mode": "EAGER"}},
            "'resource.standbyPolicy.mode'",
            id="unknown-mode",
        ),
        pytest.param(
            "patch",
            {"standbyPolicy": {"initialDelaySec": 3601}},
            "'resource.standbyPolicy.initialDelaySec'",
            id="delay-over-3600",
        ),
        pytest.param(
            "patch",
            {"targetSuspendedSize": -1},
            "'resource.targetSuspendedSize'",
            id="negative-pool",
        ),
    ],
)
def test_invalid_requests_answer_the_api_error_body(
    compute: Any, method: str, body: dict[str, Any], field: str
) -> None:
    make_group(compute, "bids", 0)
    status, error = error_body(Group(compute, "bids", False).call(method, body=body))
    assert status == 400
    assert error["code"] == 400
    assert error["errors"][0]["reason"] == "invalid"
    assert f"Invalid value for field {field}" in error["message"]


def test_a_pool_size_set_by_patch_is_filled_after_the_initial_delay(
    compute: Any, emulator: EmulatorServer
) -> None:
    emulator.control("settings", {"instanceBootSeconds": 0.2})
    make_group(compute, "pool", 0)
    group = Group(compute, "pool", False)
    group.run("patch", body={"targetSuspendedSize": 2, "standbyPolicy": {"initialDelaySec": 1}})
    got = group.get()
    assert got["standbyPolicy"] == {"mode": "MANUAL", "initialDelaySec": 1}
    # Booted, then scheduled for suspension (RUNNING, action SUSPENDING) during the delay.
    until(
        lambda: (
            [(m["instanceStatus"], m["currentAction"]) for m in group.instances()]
            == [("RUNNING", "SUSPENDING")] * 2
        )
    )
    until(lambda: group.statuses() == ["SUSPENDED", "SUSPENDED"])
    settled = until(group.stable)
    assert (settled["targetSize"], settled["targetSuspendedSize"]) == (0, 2)


def test_scale_out_pool_resumes_the_pool_first_then_refills_it(compute: Any) -> None:
    body = {
        "name": "warm",
        "instanceTemplate": TEMPLATE,
        "targetSize": 0,
        "targetSuspendedSize": 2,
        "standbyPolicy": {"mode": "SCALE_OUT_POOL"},
    }
    wait(compute, compute.instanceGroupManagers().insert(project=P, zone=Z, body=body).execute())
    group = Group(compute, "warm", False)
    until(lambda: group.statuses() == ["SUSPENDED", "SUSPENDED"] and group.stable())
    pool = {m["name"] for m in group.instances()}
    group.run("resize", size=3)
    until(lambda: group.get()["currentActions"]["resuming"] == 2)
    settled = until(lambda: len(group.instances()) == 5 and group.stable())
    assert (settled["targetSize"], settled["targetSuspendedSize"]) == (3, 2)
    running = {m["name"] for m in group.instances() if m["instanceStatus"] == "RUNNING"}
    suspended = {m["name"] for m in group.instances() if m["instanceStatus"] == "SUSPENDED"}
    assert pool < running  # both pool VMs were resumed...
    assert len(running) == 3  # ...one more was created...
    assert len(suspended) == 2  # ...and the pool refilled...
    assert not suspended & pool  # ...with new ones


def test_manual_mode_leaves_the_pool_alone_on_resize(compute: Any) -> None:
    body = {"name": "warm", "instanceTemplate": TEMPLATE, "targetSuspendedSize": 1}
    wait(compute, compute.instanceGroupManagers().insert(project=P, zone=Z, body=body).execute())
    group = Group(compute, "warm", False)
    until(lambda: group.statuses() == ["SUSPENDED"] and group.stable())
    group.run("resize", size=1)
    until(lambda: group.statuses() == ["RUNNING", "SUSPENDED"] and group.stable())
    assert group.get()["currentActions"]["resuming"] == 0


def test_a_pool_vm_deleted_underneath_is_recreated_and_suspended(
    compute: Any, emulator: EmulatorServer
) -> None:
    body = {"name": "warm", "instanceTemplate": TEMPLATE, "targetSuspendedSize": 1}
    wait(compute, compute.instanceGroupManagers().insert(project=P, zone=Z, body=body).execute())
    group = Group(compute, "warm", False)
    until(lambda: group.statuses() == ["SUSPENDED"] and group.stable())
    lost = group.instances()[0]["name"]
    emulator.control(
        "delete-instance", {"project": P, "location": Z, "group": "warm", "instance": lost}
    )
    until(lambda: group.get()["currentActions"]["creating"] == 1)
    until(lambda: group.statuses() == ["SUSPENDED"] and group.stable())
    assert group.instances()[0]["name"] != lost


def test_a_suspended_instance_command_is_frozen_and_resumed(
    compute: Any, emulator: EmulatorServer, tmp_path: Any
) -> None:
    """Suspend keeps memory: the instance's process is stopped, not restarted, by a resume."""
    ticks = tmp_path / "ticks"
    script = (
        "import os,sys,time\n"
        f"p={str(ticks)!r}+'-'+os.environ['GCE_INSTANCE']\n"
        "n=0\n"
        "while True:\n"
        "    n+=1; open(p+'.new','w').write(f'{os.getpid()} {n}'); os.replace(p+'.new',p)\n"
        "    time.sleep(0.05)\n"
    )
    emulator.control("settings", {"instanceCommand": [sys.executable, "-c", script]})
    make_group(compute, "warm", 1)
    group = Group(compute, "warm", False)
    until(group.stable)
    vm = group.instances()[0]
    marker = tmp_path / f"ticks-{vm['name']}"
    until(marker.exists)
    pid = marker.read_text().split()[0]
    group.run("suspendInstances", body={"instances": [vm["instance"]]})
    until(lambda: group.statuses() == ["SUSPENDED"])
    frozen = marker.read_text()
    group.run("resumeInstances", body={"instances": [vm["instance"]]})
    until(lambda: group.statuses() == ["RUNNING"])
    until(lambda: marker.read_text() != frozen)
    resumed_pid, count = marker.read_text().split()
    assert resumed_pid == pid  # the same process went on...
    assert int(count) > int(frozen.split()[1])  # ...from where it was


def test_a_group_command_replaces_the_instance_command_for_that_group_only(
    compute: Any, emulator: EmulatorServer, tmp_path: Any
) -> None:
    """Two groups of one emulator can run different workers: each instance writes which command
    it runs, keyed by its group."""

    def writer(label: str) -> list[str]:
        script = (
            "import os,time\n"
            f"open({str(tmp_path)!r}+'/'+os.environ['GCE_GROUP'],'w').write({label!r})\n"
            "time.sleep(60)\n"
        )
        return [sys.executable, "-c", script]

    emulator.control(
        "settings",
        {"instanceCommand": writer("default"), "groupCommands": {"special": writer("special")}},
    )
    make_group(compute, "plain", 1)
    make_group(compute, "special", 1)
    until(lambda: (tmp_path / "plain").exists() and (tmp_path / "special").exists())
    assert (tmp_path / "plain").read_text() == "default"
    assert (tmp_path / "special").read_text() == "special"


def test_the_api_answers_while_a_deleted_instances_worker_finishes_its_job(
    compute: Any, emulator: EmulatorServer, tmp_path: Any
) -> None:
    """A worker told to stop (SIGTERM) finishes the job in hand first: the API goes on answering
    meanwhile. It used to hold the emulator's lock while it waited (up to 10 s, then SIGKILL),
    stalling every call, which the chaos campaign took for starved policies. Here the worker
    exits cleanly only once a call made after its SIGTERM has been answered."""
    terminating, release, clean = (tmp_path / n for n in ("terminating", "release", "clean"))
    script = (
        "import os,signal,time\n"
        "def stop(*_):\n"
        f"    open({str(terminating)!r},'w').close()\n"
        f"    while not os.path.exists({str(release)!r}): time.sleep(0.02)\n"
        f"    open({str(clean)!r},'w').close(); os._exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "while True: time.sleep(1)\n"
    )
    emulator.control("settings", {"instanceCommand": [sys.executable, "-c", script]})
    make_group(compute, "busy", 1)
    make_group(compute, "other", 0)
    group = Group(compute, "busy", False)
    until(lambda: group.statuses() == ["RUNNING"] and group.stable())
    group.run("resize", size=0)
    until(terminating.exists)
    assert Group(compute, "other", False).get()["targetSize"] == 0  # answered...
    release.touch()  # ...before the worker was let go
    until(clean.exists)


def test_list_self_link_and_instance_template_are_full_urls(
    compute: Any, emulator: EmulatorServer
) -> None:
    make_group(compute, "bids", 0)
    listed = compute.instanceGroupManagers().list(project=P, zone=Z).execute()
    assert listed["selfLink"] == (
        f"{emulator.api_endpoint}projects/{P}/zones/{Z}/instanceGroupManagers"
    )
    assert listed["items"][0]["instanceTemplate"] == f"{emulator.api_endpoint}{TEMPLATE}"
