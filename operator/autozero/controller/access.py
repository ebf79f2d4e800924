"""May this policy scale its Kubernetes targets? Asked of the apiserver's own authorizer.

A ScalingPolicy that names a ServiceAccount (or, under the operator's --default-service-account,
every policy) is held to what that ServiceAccount may do: a SubjectAccessReview per request
autozero would make on the target, as its kind lists them (`TargetKind.access_checks`; for a
workload, `get` and `patch` on `<resource>/scale`, plus `list`, `create` and `delete` on
HorizontalPodAutoscalers when the group hands off to one). The same check as `kubectl
auth can-i --as=system:serviceaccount:NS:NAME`, so RBAC stays the one place where an
administrator decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autozero.policy.model import Policy
from autozero.runtime.shell import AccessUnknown
from autozero.targets.base import ScaleTarget, TargetError
from autozero.targets.kind import AccessCheck, Refusal
from autozero.targets.registry import kind_of

TIMEOUT = 10


class AccessReviewFailed(AccessUnknown):
    """The apiserver could not answer a SubjectAccessReview; nothing is scaled meanwhile."""


@dataclass
class AccessReviewer:
    api: Any  # kubernetes.client.ApiClient

    def allowed(self, namespace: str, service_account: str, check: AccessCheck) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{namespace}:{service_account}",
                groups=[
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{namespace}",
                    "system:authenticated",
                ],
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace,
                    verb=check.verb,
                    group=check.group,
                    resource=check.resource,
                    subresource=check.subresource or None,
                    name=check.name or None,
                ),
            )
        )
        try:
            answer = client.AuthorizationV1Api(self.api).create_subject_access_review(
                review, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            raise AccessReviewFailed(
                f"SubjectAccessReview for {check}: HTTP {exc.status} {exc.reason}"
            ) from exc
        return bool(answer.status and answer.status.allowed)

    def refusals(
        self, policy: Policy, service_account: str, targets: Mapping[str, ScaleTarget]
    ) -> list[Refusal]:
        """The groups whose target `service_account` could not drive itself."""
        found: list[Refusal] = []
        for group in policy.groups:
            target = targets.get(group.name)
            if target is None:
                continue
            try:
                checks = list(kind_of(group.target).access_checks(target, group.handoff))
            except TargetError:
                continue  # not served by the API: observing it reports that, and scales nothing
            denied = [c for c in checks if not self.allowed(policy.namespace, service_account, c)]
            if denied:
                found.append(
                    Refusal(
                        group.name,
                        "TargetForbidden",
                        f"ServiceAccount {policy.namespace}/{service_account} may not "
                        f"{', '.join(map(str, denied))}, so this policy may not either",
                    )
                )
        return found
