"""Every field the emulator returns, checked against the compute v1 discovery document that
google-api-python-client ships: a name the schema does not have, a wrong JSON type, a value
outside an enum, an int64 not sent as a string."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import googleapiclient
from gce_emulator import EmulatorServer

P, Z, R = "acme", "europe-west1-c", "europe-west1"
TEMPLATE = "global/instanceTemplates/worker"
DISCOVERY = json.loads(
    (
        Path(googleapiclient.__file__).parent / "discovery_cache/documents/compute.v1.json"
    ).read_text()
)


def differences(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Where `value` departs from `schema` (a discovery schema, `$ref`s followed)."""
    if "$ref" in schema:
        schema = DISCOVERY["schemas"][schema["$ref"]]
    kind = schema.get("type")
    found: list[str] = []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, member in value.items():
            if key in properties:
                found += differences(member, properties[key], f"{where}.{key}")
            elif extra is not None:
                found += differences(member, extra, f"{where}[{key}]")
            else:
                found.append(f"{where}.{key}: not in {schema.get('id', 'the schema')}")
        return found
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not an array"]
        for n, item in enumerate(value):
            found += differences(item, schema["items"], f"{where}[{n}]")
        return found
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string ({schema.get('format', '')})"]
        if schema.get("format") in ("int64", "uint64") and not value.lstrip("-").isdigit():
            found.append(f"{where}: {value!r} is not an {schema['format']}")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: {value!r} is not an integer"]
    elif kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [f"{where}: {value!r} is not a number"]
    elif kind == "boolean" and not isinstance(value, bool):
        return [f"{where}: {value!r} is not a boolean"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of its enum")
    return found


def response_schema(api: str) -> dict[str, Any]:
    resource, method = api.split(".")
    return dict(DISCOVERY["resources"][resource]["methods"][method]["response"])


def call(emulator: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    status, answer = emulator.emulator.dispatch(method, "/compute/v1/" + path, body)
    assert status == 200, answer
    return answer


def wait(emulator: EmulatorServer, op: dict[str, Any]) -> dict[str, Any]:
    scope = op.get("zone") or op.get("region") or ""
    path = scope.split("/compute/v1/", 1)[1]
    while op["status"] != "DONE":
        op = call(emulator, "POST", f"{path}/operations/{op['name']}/wait")
    return op


def test_every_returned_field_is_in_the_discovery_document(emulator: EmulatorServer) -> None:
    """Drives every route, zonal and regional, through a standby-pool life, and checks each
    answer against the schema of the method's response."""
    answers: list[tuple[str, Any]] = []

    def record(api: str, method: str, path: str, body: Any = None) -> Any:
        answer = call(emulator, method, path, body)
        answers.append((api, answer))
        return answer

    for prefix, scope in (("", f"projects/{P}/zones/{Z}"), ("region", f"projects/{P}/regions/{R}")):
        igm, asc = f"{prefix}InstanceGroupManagers", f"{prefix}Autoscalers"
        igm, asc = igm[0].lower() + igm[1:], asc[0].lower() + asc[1:]
        ops = f"{prefix}Operations" if prefix else "zoneOperations"
        ops = ops[0].lower() + ops[1:]
        body = {
            "name": "warm",
            "instanceTemplate": TEMPLATE,
            "targetSize": 2,
            "targetSuspendedSize": 1,
            "standbyPolicy": {"mode": "SCALE_OUT_POOL", "initialDelaySec": 0},
        }
        pending = record(f"{igm}.insert", "POST", f"{scope}/instanceGroupManagers", body)
        answers.append((f"{ops}.get", wait(emulator, pending)))
        base = f"{scope}/instanceGroupManagers/warm"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            group = record(f"{igm}.get", "GET", base)
            if group["status"]["isStable"]:
                break
            time.sleep(0.05)
        listed = record(f"{igm}.listManagedInstances", "POST", f"{base}/listManagedInstances")
        running = [
            m["instance"] for m in listed["managedInstances"] if m["instanceStatus"] == "RUNNING"
        ]
        for verb in ("suspend", "stop"):
            op = record(
                f"{igm}.{verb}Instances",
                "POST",
                f"{base}/{verb}Instances",
                {"instances": [running.pop()]},
            )
            answers.append((f"{ops}.get", wait(emulator, op)))
        record(f"{igm}.listManagedInstances", "POST", f"{base}/listManagedInstances")
        record(f"{igm}.patch", "PATCH", base, {"standbyPolicy": {"initialDelaySec": 5}})
        record(f"{igm}.list", "GET", f"{scope}/instanceGroupManagers")
        group_link = record(f"{igm}.get", "GET", base)["selfLink"]
        policy = {"minNumReplicas": 1, "maxNumReplicas": 3}
        op = record(
            f"{asc}.insert",
            "POST",
            f"{scope}/autoscalers",
            {"name": "az", "target": group_link, "autoscalingPolicy": policy},
        )
        wait(emulator, op)
        record(f"{asc}.get", "GET", f"{scope}/autoscalers/az")
        record(f"{asc}.list", "GET", f"{scope}/autoscalers")
        record(f"{igm}.get", "GET", base)
        gone = record(f"{asc}.delete", "DELETE", f"{scope}/autoscalers/az")
        answers.append((f"{ops}.get", wait(emulator, gone)))
        resized = record(f"{igm}.resize", "POST", f"{base}/resize?size=0")
        answers.append((f"{ops}.get", wait(emulator, resized)))
        record(f"{ops}.list", "GET", f"{scope}/operations")
    record(
        "instanceGroupManagers.aggregatedList",
        "GET",
        f"projects/{P}/aggregated/instanceGroupManagers",
    )
    record("autoscalers.aggregatedList", "GET", f"projects/{P}/aggregated/autoscalers")

    found: list[str] = []
    for api, answer in answers:
        found += differences(answer, response_schema(api), api)
    assert found == []
    # The walk saw the pool's fields, so their absence from the schema would have shown.
    assert any("targetSuspendedSize" in answer for _, answer in answers)
