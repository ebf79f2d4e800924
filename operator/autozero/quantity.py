"""Kubernetes quantities ("500m", "512Mi", "30") as numbers: HPA targets and KEDA's cpu/memory."""

from __future__ import annotations

import re

_QUANTITY = re.compile(r"^([+-]?[0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_SCALES = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def parse_quantity(value: object) -> float:
    """The number a quantity stands for; ValueError when it is not one."""
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 512Mi, 30)")
    return float(match.group(1)) * _SCALES[match.group(2)]
