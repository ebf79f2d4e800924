"""Load, before the operator starts serving policies, what its first passes would load in them.

A restarted operator's first pass of a policy that decides something reports it: a status patch
and an Event. The kubernetes client imports its API classes on first use, and `CoreV1Api` brings
some 250 model modules (0.3 s of CPU on a quiet node, seconds on a loaded one); cel-python
builds its parser on the first rule. Paid inside that first pass, they delayed the policy's next
evaluation past two polling intervals in a chaos campaign (benchmarks/README.md). Paid here,
before kopf starts, a restarted operator's first passes are as quick as any later one.
"""

from __future__ import annotations

import time

from autozero.policy.validate import prepare


def warm_up() -> float:
    """Import the client classes every policy's reports use and build what validating a policy
    builds; return the seconds it took."""
    from kubernetes import client

    started = time.monotonic()
    for name in ("CoreV1Api", "CoreV1Event", "CustomObjectsApi", "V1ObjectReference"):
        getattr(client, name)
    prepare()
    return time.monotonic() - started
