"""Is a manifest meant to be a ScalingPolicy, and does it say so correctly?

A document of another kind is none of autozero's business, but one that is almost ours
(`kind: Scalingpolicy`, `apiVersion: autozero.dev/v1alpah1`) is a policy with a typo: skipping it
would pass a policy that kubectl then refuses, or applies as something else.
"""

from __future__ import annotations

import re
from typing import Any

from autozero.policy.errors import FieldError
from autozero.policy.model import API_GROUP, API_VERSION, KIND
from autozero.policy.suggest import closest, distance

EXPECTED_API_VERSION = f"{API_GROUP}/{API_VERSION}"
_KIND_SPELLINGS = (KIND, "ScalingPolicies")  # the plural is a common slip in a kind
_NAME_MAX = 253
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _group(api_version: Any) -> str:
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]


def looks_like_policy(manifest: Any) -> bool:
    """Our API group (or a near miss of it), or a kind that is ScalingPolicy give or take a typo
    or its case."""
    if not isinstance(manifest, dict):
        return False
    kind = manifest.get("kind")
    if isinstance(kind, str) and (kind == KIND or closest(kind, _KIND_SPELLINGS) is not None):
        return True
    group = _group(manifest.get("apiVersion")).lower()
    return bool(group) and distance(group, API_GROUP) <= 2


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"a {type(value).__name__} ({value!r})"


def identity_errors(manifest: dict[str, Any]) -> list[FieldError]:
    """apiVersion, kind and metadata.name, each with what was meant when it is a near miss."""
    errors = []
    api_version = manifest.get("apiVersion")
    if api_version is None:
        errors.append(FieldError("apiVersion", f"is missing (must be {EXPECTED_API_VERSION})"))
    elif api_version != EXPECTED_API_VERSION:
        hint = (
            f"did you mean {EXPECTED_API_VERSION}?"
            if isinstance(api_version, str)
            and closest(api_version, [EXPECTED_API_VERSION]) is not None
            else f"must be {EXPECTED_API_VERSION}"
        )
        errors.append(
            FieldError("apiVersion", f"unknown apiVersion {_describe(api_version)} ({hint})")
        )
    kind = manifest.get("kind")
    if kind is None:
        errors.append(FieldError("kind", f"is missing (must be {KIND})"))
    elif kind != KIND:
        hint = (
            f"did you mean {KIND}?"
            if isinstance(kind, str) and closest(kind, _KIND_SPELLINGS) is not None
            else f"must be {KIND}, the only kind of {API_GROUP}"
        )
        errors.append(FieldError("kind", f"unknown kind {_describe(kind)} ({hint})"))
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        errors.append(FieldError("metadata.name", "is required"))
    else:
        errors += name_errors(metadata["name"])
    return errors


def name_errors(name: Any) -> list[FieldError]:
    """The apiserver's rule for the name of a custom object: a DNS subdomain (RFC 1123)."""
    if not isinstance(name, str):
        return [FieldError("metadata.name", f"must be a string, not {_describe(name)}")]
    if len(name) > _NAME_MAX:
        return [FieldError("metadata.name", f"must be no more than {_NAME_MAX} characters")]
    if not _DNS_SUBDOMAIN.fullmatch(name):
        return [
            FieldError(
                "metadata.name",
                f"{name!r} is not a lowercase RFC 1123 subdomain: lower case alphanumeric "
                "characters, '-' or '.', starting and ending with an alphanumeric character",
            )
        ]
    return []
