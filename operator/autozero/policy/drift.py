"""An outdated CRD, found from what it serves: the fields autozero knows that it would drop.

The apiserver prunes every field its stored CRD does not know, silently for most clients (kubectl's
strict validation refuses them; a GitOps controller or an API client gets a warning header at most).
Helm never upgrades a chart's crds/ folder, so a cluster can run a newer autozero over an older CRD:
a policy written with a newer field then loses it on the way in, and autozero would act on the rest
as if the user had not asked for it. These pure functions say which fields are at stake, for a
condition on the policy (no I/O: the caller passes the served CRD and the policy it read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

PRESERVE = "x-kubernetes-preserve-unknown-fields"


def _version_schema(crd: Mapping[str, Any], version: str) -> Mapping[str, Any]:
    for served in crd.get("spec", {}).get("versions", []):
        if served.get("name") == version:
            return dict(served.get("schema", {}).get("openAPIV3Schema", {}))
    return {}


def missing_fields(
    expected_crd: Mapping[str, Any], served_crd: Mapping[str, Any], version: str = "v1alpha1"
) -> list[str]:
    """The paths (e.g. `spec.groups[].fallback`) that autozero's CRD has and the served one lacks.

    Only the outermost missing path is listed (not each of its children); nothing is missing below
    a served node that preserves unknown fields. An unserved `version` lacks everything: `["spec"]`
    and the rest of the top level."""
    expected = _version_schema(expected_crd, version)
    served = _version_schema(served_crd, version)
    missing: list[str] = []
    _compare(expected, served, "", missing)
    return missing


def _compare(
    expected: Mapping[str, Any], served: Mapping[str, Any], path: str, missing: list[str]
) -> None:
    if served.get(PRESERVE):
        return
    served_properties = served.get("properties") or {}
    for name, sub in (expected.get("properties") or {}).items():
        child = f"{path}.{name}" if path else name
        if name not in served_properties:
            missing.append(child)
        else:
            _compare(sub, served_properties[name], child, missing)
    expected_items, served_items = expected.get("items"), served.get("items")
    if isinstance(expected_items, Mapping):
        if isinstance(served_items, Mapping):
            _compare(expected_items, served_items, f"{path}[]", missing)
        elif not served.get(PRESERVE):
            missing.append(f"{path}[]")
    expected_map, served_map = (
        expected.get("additionalProperties"),
        served.get("additionalProperties"),
    )
    if isinstance(expected_map, Mapping) and isinstance(served_map, Mapping):
        _compare(expected_map, served_map, f"{path}{{}}", missing)


def dropped_fields(applied: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """The paths set in what the user applied and absent from what the apiserver stored.

    `applied` is the policy as written: kubectl keeps it in the annotation
    `kubectl.kubernetes.io/last-applied-configuration` (see `applied_manifest`). Lists are matched
    by position, as the apiserver stores them."""
    dropped: list[str] = []
    _walk(applied, stored, "", dropped)
    return dropped


def _walk(applied: Any, stored: Any, path: str, dropped: list[str]) -> None:
    if isinstance(applied, Mapping):
        if not isinstance(stored, Mapping):
            return
        for key, value in applied.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in stored:
                dropped.append(child)
            else:
                _walk(value, stored[key], child, dropped)
    elif isinstance(applied, list) and isinstance(stored, list):
        for index, (item, kept) in enumerate(zip(applied, stored, strict=False)):
            _walk(item, kept, f"{path}[{index}]", dropped)


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def applied_manifest(policy: Mapping[str, Any]) -> dict[str, Any] | None:
    """The policy as `kubectl apply` last sent it; None if kubectl did not apply it (or no JSON)."""
    raw = (policy.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return None
    try:
        manifest = json.loads(raw)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def outdated_crd_message(missing: Sequence[str], dropped: Sequence[str] = ()) -> str | None:
    """The sentence for the policy's condition, or None when the CRD is current."""
    if not missing:
        return None
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    message = (
        f"the served ScalingPolicy CRD lacks {shown}, which this autozero knows: the apiserver "
        "drops these fields from every policy; upgrade the CRD (helm upgrade with "
        "crds.install=true, or kubectl apply -f crds/)"
    )
    if dropped:
        message += f"; dropped from this policy: {', '.join(dropped[:5])}"
    return message
