"""Who may scale what: the checks that keep a ScalingPolicy within its author's reach.

A policy asks the operator to act with the operator's identity, so the operator refuses what the
policy's namespace could not do itself (docs/design.md §6). Each target kind says what that is
for its targets (`TargetKind.refusals`: a workload of another namespace, a GCE project the
namespace was not allowed). The checks are pure, on the parsed policy and the shell's
configuration, and run before any source or target is built: a refused policy causes no API call
at all. The RBAC check (SubjectAccessReview) needs the apiserver and lives in `controller.access`.
"""

from __future__ import annotations

from typing import Any

from autozero.policy.model import Policy
from autozero.targets.gce import GCE_ALLOW_ENV, AllowlistError, GCEAllowlist
from autozero.targets.kind import Refusal
from autozero.targets.registry import kind_of

#: The shells parse the GCE allowlist from their flags; it is the GCE kind's, named here too.
__all__ = ["GCE_ALLOW_ENV", "AllowlistError", "GCEAllowlist", "Refusal", "refusals"]


def refusals(policy: Policy, config: Any) -> list[Refusal]:
    """Every group of `policy` that reaches outside what its namespace may touch, given the
    shell's `RuntimeConfig` (the GCE allowlist...)."""
    found: list[Refusal] = []
    for group in policy.groups:
        found += kind_of(group.target).refusals(policy, group.name, group.target, config)
    return found
