"""What every metric source offers, and how sources fail.

A source reads one metric (`read`) and returns the engine's `Reading`: `value` for rules, and for
queues `pending` and, when the source can know it, `in_flight`. Sources that share a server are
read together (`read_batch`: one Redis pipeline, one RabbitMQ API call per vhost per cycle). A
source that can notice new work by itself also offers `watch` (a `PushSource`), so a sleeping
group wakes at once rather than at the next poll; the poll stays as the safety net.

Errors are typed and never carry a credential: URLs in messages go through `redact`.

A source is one module that ends with its `SourceKind` (its key in the policy, its settings'
schema fragment, how to build it), and one line in `sources.registry`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from autozero.engine.readings import Reading
from autozero.policy.fields import Schema
from autozero.secrets import SecretUnavailable

DEFAULT_TIMEOUT = 5.0


class SourceError(Exception):
    """A failed read: which metric, which server (redacted), and why."""

    kind = "Error"

    def __init__(self, metric: str, target: str, message: str) -> None:
        self.metric = metric
        self.target = redact(target)
        self.detail = redact(message)
        super().__init__(f"{metric} ({self.target}): {self.detail}")


class SourceUnreachable(SourceError):
    kind = "Unreachable"


class SourceTimeout(SourceUnreachable):
    kind = "Timeout"


class SourceAuthError(SourceError):
    kind = "Auth"


class SourceNotFound(SourceError):
    kind = "NotFound"


class SourceBadResponse(SourceError):
    kind = "BadResponse"


class SourceNoData(SourceError):
    """The source answered, but with nothing to measure (an empty Prometheus result)."""

    kind = "NoData"


class SourceConfigError(SourceError):
    """Settings the source cannot work with (caught when the policy is loaded)."""

    kind = "Config"


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<auth>[^/@\s]*)@")


def redact(text: str) -> str:
    """Hide the user-info part of every URL in `text`: redis://:pw@host -> redis://***@host."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)


# (secret name, key) -> value, in the policy's namespace; raises SecretUnavailable (or KeyError)
SecretResolver = Callable[[str, str], str]


@dataclass(frozen=True)
class Context:
    """What sources need from outside: secrets of the policy's namespace, and a timeout."""

    resolve_secret: SecretResolver
    namespace: str = "default"
    timeout: float = DEFAULT_TIMEOUT

    def value(self, settings: Mapping[str, Any], key: str, metric: str) -> str:
        """A setting given inline (`key`) or from a Secret (`keyFrom`)."""
        if settings.get(key):
            return str(settings[key])
        ref = (settings.get(f"{key}From") or {}).get("secretKeyRef")
        if not ref:
            raise SourceConfigError(metric, key, f"set {key} or {key}From")
        try:
            return self.resolve_secret(ref["name"], ref["key"])
        except SecretUnavailable as exc:  # which of no Secret, no key, forbidden... it says
            error = SourceUnreachable if exc.retryable else SourceConfigError
            raise error(metric, key, str(exc)) from exc
        except KeyError as exc:  # a plain resolver (a mapping): the key is not there
            raise SourceConfigError(
                metric,
                key,
                f"secret {self.namespace}/{ref['name']} has no key {ref['key']!r}",
            ) from exc


@runtime_checkable
class MetricSource(Protocol):
    """One metric of one policy."""

    metric: str

    def batch_key(self) -> tuple[Any, ...]:
        """Sources with equal keys are read together by `read_batch`."""
        ...

    def read(self) -> Reading:
        """Read now; raise a SourceError subclass on failure."""
        ...


class Watch(Protocol):
    def stop(self) -> None: ...


@runtime_checkable
class PushSource(MetricSource, Protocol):
    """A source that can tell, between polls, that work arrived."""

    def watch(self, on_work: Callable[[str], None]) -> Watch:
        """Call `on_work(metric)` whenever work may have arrived, until stopped."""
        ...


class BaseSource:
    """Shared behaviour: a source whose class cannot batch reads its instances one by one."""

    metric: str

    def batch_key(self) -> tuple[Any, ...]:
        return (type(self).__name__, id(self))

    def read(self) -> Reading:
        raise NotImplementedError

    @classmethod
    def read_batch(cls, sources: Sequence[Any]) -> list[Reading | SourceError]:
        """One result per source, in the order given. Sources of several policies may share a
        batch (and a metric name), so results are matched by position, never by name."""
        out: list[Reading | SourceError] = []
        for source in sources:
            try:
                out.append(source.read())
            except SourceError as error:
                out.append(error)
        return out


class BatchedSource(BaseSource):
    """A source whose class reads many instances at once: reading one is a batch of one."""

    def read(self) -> Reading:
        result = type(self).read_batch([self])[0]
        if isinstance(result, SourceError):
            raise result
        return result


@dataclass(frozen=True, eq=False)
class SourceKind:
    """What a source's module declares; `sources.registry` lists them, and the schema, the
    parser and the runtime find every source there.

    - `key`: the source's key in an entry of `spec.metrics` (e.g. `rq`);
    - `schema()`: its settings' fragment of the CRD (types, defaults, descriptions, CEL rules);
    - `build(metric, settings, ctx)`: check the (defaulted) settings and make the source, or
      raise `SourceConfigError`: settings stay a mapping until here, as a KEDA scaler parses
      its own metadata;
    - `unit`: what one pending item is, in sentences (`jobs`); empty for a value that counts no
      work (a query), which need not fall to 0 when idle, so an activation on it needs a
      threshold;
    - `what`: one such source, in sentences (`an RQ queue`);
    - `example`: valid settings (defaults may be left out): the round-trip test builds policies
      from every registered source's example.
    """

    key: str
    what: str
    unit: str
    schema: Callable[[], Schema]
    build: Callable[[str, Mapping[str, Any], Context], BaseSource]
    example: Mapping[str, Any]

    @property
    def counts_work(self) -> bool:
        """Whether its value is a count of work, 0 when there is none."""
        return bool(self.unit)
