"""Who may scale what: the checks that keep a ScalingPolicy within its author's reach.

A policy asks the operator to act with the operator's identity, so the operator refuses what the
policy's namespace could not do itself (docs/design.md §6). The checks here are pure, on the parsed
policy and the operator's configuration, and run before any source or target is built: a refused
policy causes no API call at all. The RBAC check (SubjectAccessReview) needs the apiserver and
lives in `controller.access`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from autozero.policy.model import GCETarget, KubernetesTarget, Policy

GCE_ALLOW_ENV = "AUTOZERO_GCE_ALLOW"


class AllowlistError(ValueError):
    """An allowlist entry that cannot be read (a flag, an env var or a Helm value)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One group the policy may not drive, and why (`reason` becomes the condition's reason)."""

    group: str
    reason: str  # TargetForbidden | GCEProjectNotAllowed
    message: str

    def __str__(self) -> str:
        return f"{self.group}: {self.message}"


@dataclass(frozen=True, slots=True)
class GCEAllowlist:
    """Which GCE projects the policies of each namespace may target.

    Entries are `NAMESPACE=PROJECT[,PROJECT...]`; NAMESPACE may be a glob (`team-*`, `*`). A
    namespace may target the union of the projects of every entry it matches, and nothing when it
    matches none: the operator denies by default. `everything()` is for the standalone runner,
    where the policy's author runs autozero with their own credentials.
    """

    entries: tuple[tuple[str, frozenset[str]], ...] = ()
    allow_all: bool = False

    @classmethod
    def everything(cls) -> GCEAllowlist:
        return cls(allow_all=True)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> GCEAllowlist:
        parsed: list[tuple[str, frozenset[str]]] = []
        for entry in entries:
            for part in (p.strip() for p in entry.split(";")):
                if not part:
                    continue
                namespace, sep, projects = part.partition("=")
                names = frozenset(p.strip() for p in projects.split(",") if p.strip())
                if not sep or not namespace.strip() or not names:
                    raise AllowlistError(
                        f"GCE allowlist entry {part!r}: expected NAMESPACE=PROJECT[,PROJECT...]"
                    )
                parsed.append((namespace.strip(), names))
        return cls(tuple(parsed))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Sequence[str]]) -> GCEAllowlist:
        return cls(tuple((ns, frozenset(projects)) for ns, projects in mapping.items()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GCEAllowlist | None:
        """The allowlist in $AUTOZERO_GCE_ALLOW (entries separated by `;`), or None if unset."""
        value = (environ if environ is not None else os.environ).get(GCE_ALLOW_ENV)
        return cls.parse([value]) if value else None

    def projects(self, namespace: str) -> frozenset[str]:
        allowed: set[str] = set()
        for pattern, projects in self.entries:
            if fnmatch.fnmatchcase(namespace, pattern):
                allowed |= projects
        return frozenset(allowed)

    def allows(self, namespace: str, project: str) -> bool:
        return self.allow_all or project in self.projects(namespace)


def refusals(policy: Policy, gce: GCEAllowlist) -> list[Refusal]:
    """Every group of `policy` that reaches outside what its namespace may touch."""
    found: list[Refusal] = []
    for group in policy.groups:
        target = group.target
        if isinstance(target, KubernetesTarget):
            if target.namespace not in (None, policy.namespace):
                found.append(
                    Refusal(
                        group.name,
                        "TargetForbidden",
                        f"{target.kind} {target.namespace}/{target.name} is outside the "
                        f"policy's namespace {policy.namespace}; a ScalingPolicy may only scale "
                        "workloads of its own namespace",
                    )
                )
        elif isinstance(target, GCETarget) and not gce.allows(policy.namespace, target.project):
            allowed = sorted(gce.projects(policy.namespace))
            found.append(
                Refusal(
                    group.name,
                    "GCEProjectNotAllowed",
                    f"namespace {policy.namespace} may not target GCE project {target.project} "
                    f"(allowed: {', '.join(allowed) or 'none'}); an administrator allows it with "
                    f"the chart value gce.allowedProjects or the operator flag "
                    f"--gce-allow {policy.namespace}={target.project}",
                )
            )
    return found
