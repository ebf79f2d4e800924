"""The spec key of a metric -> its source class; and reading many sources, batched per server.

Adding a source is one module and one line here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
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
    """Read every source, in one batch per server; failures become engine Failures."""
    batches: dict[tuple[Any, ...], list[BaseSource]] = defaultdict(list)
    for source in sources:
        batches[(type(source), *source.batch_key())].append(source)
    out: dict[str, Observation] = {}
    for batch in batches.values():
        for metric, result in type(batch[0]).read_batch(batch).items():
            out[metric] = as_observation(result)
    return out


def as_observation(result: Any) -> Observation:
    if isinstance(result, SourceError):
        return Failure(str(result), kind=result.kind)
    return result  # type: ignore[no-any-return]
