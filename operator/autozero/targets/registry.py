"""Every target kind, once.

Adding a kind is one module (ending with its `TargetKind`, see `targets.kind`) and one line here:
the schema, the parser, the tenancy checks, the runtime's assembly and the operator's access
reviews all find it in `TARGETS`. Importing this imports no client library.
"""

from __future__ import annotations

from typing import Any

from autozero.targets import gce, kubernetes
from autozero.targets.kind import HandoffKind, TargetKind

#: By key, in the order the schema lists them.
TARGETS: dict[str, TargetKind] = {
    kind.key: kind
    for kind in (
        gce.KIND,
        kubernetes.KIND,
    )
}


def kind_of(spec: Any) -> TargetKind:
    """The kind of a group's parsed target (`GroupPolicy.target`)."""
    for kind in TARGETS.values():
        if type(spec) is kind.spec:
            return kind
    raise LookupError(f"no registered target kind parses to {type(spec).__name__}")


def handoff_of(spec: Any) -> HandoffKind:
    """The native autoscaler a group's target hands off to (LookupError if its kind has none)."""
    handoff = kind_of(spec).handoff
    if handoff is None:
        raise LookupError(f"target kind {kind_of(spec).key} has no handoff")
    return handoff
