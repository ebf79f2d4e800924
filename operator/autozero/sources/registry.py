"""The spec key of a metric -> its source class; and reading many sources, batched per server.

Adding a source is one module and one line here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from autozero.engine.readings import Failure, Observation
from autozero.policy.model import MetricSpec
from autozero.sources.base import BaseSource, Context, SourceError
from autozero.sources.mrq import MRQQueue
from autozero.sources.prometheus import PrometheusQuery
from autozero.sources.rabbitmq import RabbitMQQueues
from autozero.sources.redis_keys import RedisKeys
from autozero.sources.rq import RQQueue


class SourceFactory(Protocol):
    def from_settings(self, metric: str, settings: Mapping[str, Any], ctx: Context) -> Any: ...


SOURCES: dict[str, Any] = {
    "mrq": MRQQueue,
    "redis": RedisKeys,
    "rq": RQQueue,
    "rabbitmq": RabbitMQQueues,
    "prometheus": PrometheusQuery,
}


def build_source(metric: MetricSpec, ctx: Context) -> BaseSource:
    """The source for a declared metric (SourceConfigError if its settings cannot work)."""
    source: BaseSource = SOURCES[metric.source].from_settings(metric.name, metric.settings, ctx)
    return source


def read_all(sources: Iterable[BaseSource]) -> dict[str, Observation]:
    """Read one policy's sources (one per metric name), in one batch per server."""
    listed = list(sources)
    return {s.metric: seen for s, seen in zip(listed, read_many(listed), strict=True)}


def read_many(sources: Sequence[BaseSource]) -> list[Observation]:
    """Read any sources, of one policy or of many, in one batch per server; one observation per
    source, in order. Failures become engine Failures."""
    batches: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for index, source in enumerate(sources):
        batches[(type(source), *source.batch_key())].append(index)
    out: list[Observation | None] = [None] * len(sources)
    for members in batches.values():
        batch = [sources[i] for i in members]
        results = type(batch[0]).read_batch(batch)
        for index, result in zip(members, results, strict=True):
            out[index] = as_observation(result)
    return [seen for seen in out if seen is not None]


def as_observation(result: Any) -> Observation:
    if isinstance(result, SourceError):
        return Failure(str(result), kind=result.kind)
    return result  # type: ignore[no-any-return]
