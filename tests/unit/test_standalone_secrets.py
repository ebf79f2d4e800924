"""`autozero run` reads Secrets from --secrets-dir: each reason a key cannot be read has its own
message, so "has no key" is never said of a Secret that was never looked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from autozero.secrets import (
    NoSecretsDirectory,
    SecretKeyMissing,
    SecretNotFound,
    SecretUnavailable,
)
from autozero.sources.base import Context, SourceConfigError
from autozero.standalone import secrets_from_directory


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    (tmp_path / "rabbit").mkdir()
    (tmp_path / "rabbit" / "password").write_text("battery-staple\n")
    return tmp_path


def test_a_key_is_its_file_without_the_trailing_newline(secrets: Path) -> None:
    assert secrets_from_directory(secrets, "shop")("rabbit", "password") == "battery-staple"


@pytest.mark.parametrize(
    ("directory", "secret", "error", "message"),
    [
        pytest.param(
            None, "rabbit", NoSecretsDirectory,
            "secret shop/rabbit key 'username' is needed, but no --secrets-dir was given: pass "
            "--secrets-dir DIR with the key in DIR/rabbit/username",
            id="no-secrets-dir",
        ),
        pytest.param(
            ".", "ghost", SecretNotFound,
            "secret shop/ghost not found: {dir}/ghost is not a directory",
            id="no-such-secret",
        ),
        pytest.param(
            ".", "rabbit", SecretKeyMissing,
            "secret shop/rabbit has no key 'username': {dir}/rabbit/username does not exist",
            id="no-such-key",
        ),
    ],
)  # fmt: skip
def test_each_reason_has_its_own_error(
    secrets: Path,
    directory: str | None,
    secret: str,
    error: type[SecretUnavailable],
    message: str,
) -> None:
    resolve = secrets_from_directory(None if directory is None else secrets, "shop")
    with pytest.raises(error) as raised:
        resolve(secret, "username")
    assert str(raised.value) == message.format(dir=secrets)
    # A source reports it unchanged, after its metric and setting.
    context = Context(resolve, namespace="shop")
    with pytest.raises(SourceConfigError) as config_error:
        context.value({"usernameFrom": {"secretKeyRef": {"name": secret, "key": "username"}}},
                      "username", "orders")  # fmt: skip
    assert str(config_error.value) == f"orders (username): {message.format(dir=secrets)}"
