"""Why a Secret key a policy names could not be read: each reason is its own error, because each
has its own fix (pass --secrets-dir, create the Secret, add the key, grant RBAC, or wait).

Resolvers (`standalone.secrets_from_directory`, the operator's `Cluster.secret`) raise these;
sources and targets turn them into their config errors with the message unchanged. Messages name
the Secret and key, never a value.
"""

from __future__ import annotations


class SecretUnavailable(Exception):
    """A Secret key could not be read. `retryable`: the same lookup may work next time."""

    retryable = False

    def __init__(self, namespace: str, name: str, key: str, message: str) -> None:
        self.namespace, self.name, self.key = namespace, name, key
        super().__init__(message)

    @property
    def where(self) -> str:
        return f"secret {self.namespace}/{self.name}"


class NoSecretsDirectory(SecretUnavailable):
    """`autozero run` was given no --secrets-dir, so no Secret can be read at all."""


class SecretNotFound(SecretUnavailable):
    """No such Secret (no such directory under --secrets-dir)."""


class SecretKeyMissing(SecretUnavailable):
    """The Secret exists but lacks the key."""


class SecretForbidden(SecretUnavailable):
    """The Secret may not be read (RBAC, file permissions)."""


class SecretLookupFailed(SecretUnavailable):
    """The apiserver could not answer (an HTTP 5xx, a connection reset): tried again."""

    retryable = True
