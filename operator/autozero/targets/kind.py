"""What a target kind's module provides: one `TargetKind`, listed once in `targets.registry`.

A kind is what a group's `target` names (`gce`, `kubernetes`): its settings' schema fragment
and parser, the native autoscaler it may hand off to, and the hooks through which the rest of
autozero deals with it, so that none of it asks which kind a group is: the tenancy checks
(`tenancy`), building the group's `ScaleTarget` and observing many at once (`runtime.assemble`),
what the runtime's watches can follow instead (`runtime.cluster_cache`), and what the operator
asks the apiserver's authorizer before acting (`controller.access`). As KEDA keeps a scaler's
metadata parsing and its scaler in one file, and one line in its registry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autozero.policy.fields import Schema
from autozero.policy.model import Policy
from autozero.targets.base import Observed, ScaleTarget, TargetError

SecretResolver = Callable[[str, str], str]
#: Observe some of a kind's groups of one policy, in as few calls as the API allows.
BatchObserver = Callable[[Collection[str]], dict[str, Observed | TargetError]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """One group the policy may not drive, and why (`reason` becomes the condition's reason)."""

    group: str
    reason: str  # a condition reason: TargetForbidden, GCEProjectNotAllowed...
    message: str

    def __str__(self) -> str:
        return f"{self.group}: {self.message}"


@dataclass(frozen=True, slots=True)
class AccessCheck:
    """One request autozero will make on a target, as the authorizer's attributes."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    name: str = ""

    def __str__(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        what = f"{what}.{self.group}" if self.group else what
        return f"{self.verb} {what}" + (f" {self.name}" if self.name else "")


@dataclass(frozen=True, slots=True)
class WatchedWorkload:
    """A target the runtime's watches observe without a call: a namespaced object with a /scale
    subresource (its count), and the HorizontalPodAutoscalers of its namespace (one on it)."""

    group: str  # the policy's group
    namespace: str
    api_version: str
    kind: str
    name: str
    owns: Callable[[str, Sequence[str]], bool]  # (an HPA's name, its owners' uids) -> ours?

    @property
    def what(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Environment:
    """What the shell serving a policy gives every kind when its groups are assembled."""

    #: The shell's `RuntimeConfig`: each kind reads its own settings there (the GCE endpoint,
    #: the apiserver's client...).
    config: Any
    resolve_secret: SecretResolver  # a Secret's key, in the policy's namespace
    owner: Any = None  # what owns the objects autozero creates (an HPA), if anything


@dataclass
class Assembled:
    """A kind's share of a policy's parts: its groups' targets, and how to observe them."""

    targets: dict[str, ScaleTarget]
    observe: BatchObserver
    watched: dict[str, WatchedWorkload] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class HandoffKind:
    """The native autoscaler a kind's groups may hand off to while awake (`group.handoff`).

    - `key`: its key under a group's `handoff` (e.g. `hpa`);
    - `autoscaler`: its name in sentences (`HPA`);
    - `schema()`, `parse(settings)`, `render(handoff)`: its settings' CRD fragment, the typed
      handoff from the (defaulted) settings, and back;
    - `model(handoff, group)`: what `autozero simulate` predicts it does (`handoff_model`);
    - `named(target)`: the name of the object autozero creates for a group's target (what
      `autozero explain` and the user look for);
    - `examples`: valid settings, which the round-trip test uses.
    """

    key: str
    autoscaler: str
    schema: Callable[[], Schema]
    parse: Callable[[Mapping[str, Any]], Any]
    render: Callable[[Any], dict[str, Any]]
    model: Callable[[Any, str], Any]
    named: Callable[[Any], str]
    examples: tuple[Mapping[str, Any], ...]


def _no_refusals(policy: Policy, group: str, spec: Any, config: Any) -> list[Refusal]:  # noqa: ARG001
    return []


def _no_access_checks(target: Any, handoff: Any) -> Iterable[AccessCheck]:  # noqa: ARG001
    return ()


@dataclass(frozen=True, eq=False)
class TargetKind:
    """What a target kind's module declares; `targets.registry` lists them.

    - `key`: its key under a group's `target` (e.g. `gce`);
    - `spec`: the class `parse` returns; a group's kind is the one whose `spec` its target is;
    - `schema()`, `parse(settings)`, `render(spec)`: its settings' CRD fragment (with the CEL
      rules it needs), the typed spec from the (defaulted) settings, and back;
    - `assemble(policy, groups, env)`: build the targets of the policy's groups of this kind
      (by group name, their specs), with one batched observation for all of them, and what the
      runtime's watches can observe instead; `TargetConfigError` if settings cannot work;
    - `refusals(policy, group, spec, config)`: what the policy's namespace may not drive, from
      the parsed policy and the shell's configuration alone (no call: a refused policy causes
      none);
    - `access_checks(target, handoff)`: what the operator asks the apiserver's authorizer
      (SubjectAccessReview) for the policy's ServiceAccount before acting; none when the
      apiserver's RBAC does not govern the target;
    - `handoff`: the native autoscaler it may hand off to, if any;
    - `uses_cluster`: its targets call the Kubernetes apiserver (`autozero run` then loads a
      kubeconfig);
    - `examples`: valid settings, which the round-trip test uses.
    """

    key: str
    spec: type
    schema: Callable[[], Schema]
    parse: Callable[[Mapping[str, Any]], Any]
    render: Callable[[Any], dict[str, Any]]
    assemble: Callable[[Policy, Mapping[str, Any], Environment], Assembled]
    examples: tuple[Mapping[str, Any], ...]
    refusals: Callable[[Policy, str, Any, Any], list[Refusal]] = _no_refusals
    access_checks: Callable[[Any, Any], Iterable[AccessCheck]] = _no_access_checks
    handoff: HandoffKind | None = None
    uses_cluster: bool = False
