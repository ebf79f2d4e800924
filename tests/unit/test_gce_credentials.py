"""A GCE target's service-account key from a Secret: bad keys are a clear error that never
shows the key."""

from __future__ import annotations

import json

import pytest
from autozero.policy.parse import parse_policy
from autozero.runtime.assemble import RuntimeConfig, assemble
from autozero.targets.base import TargetConfigError
from support.manifests import GCE_BIDS, one_group

SECRET_TEXT = (
    "-----BEGIN PRIVATE KEY-----\nnot-a-key-but-secret-anyway\n-----END PRIVATE KEY-----\n"
)


def policy() -> object:
    key = {"secretKeyRef": {"name": "gce-key", "key": "key.json"}}
    return parse_policy(one_group({"gce": {**GCE_BIDS["gce"], "credentials": key}}))


def secrets(value: str | None) -> object:
    def resolve(name: str, key: str) -> str:
        if value is None:
            raise KeyError(f"{name}/{key}")
        return value

    return resolve


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(None, "secret team-a/gce-key key 'key.json' does not exist", id="missing"),
        pytest.param(SECRET_TEXT, "is not a service-account key (JSON)", id="not-json"),
        pytest.param(
            json.dumps({"type": "authorized_user", "refresh_token": SECRET_TEXT}),
            "is not a service-account key (JSON)",
            id="another-kind-of-credential",
        ),
        pytest.param(
            json.dumps(
                {
                    "type": "service_account",
                    "private_key": SECRET_TEXT,
                    "client_email": "x@acme.iam.gserviceaccount.com",
                    "token_uri": "http://127.0.0.1:9/token",
                }
            ),
            "holds a service-account key that cannot be loaded",
            id="unloadable-key",
        ),
    ],
)
def test_a_bad_key_is_a_target_config_error_without_its_text(
    value: str | None, message: str
) -> None:
    with pytest.raises(TargetConfigError) as raised:
        assemble(
            policy(),  # type: ignore[arg-type]
            resolve_secret=secrets(value),  # type: ignore[arg-type]
            config=RuntimeConfig(gce_endpoint="http://127.0.0.1:9/"),
        )
    text = "".join(str(e) for e in (raised.value, raised.value.__cause__) if e)
    assert message in text
    assert raised.value.group == "bids"
    assert "not-a-key-but-secret-anyway" not in text
