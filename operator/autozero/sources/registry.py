"""Every metric source, once; and reading many sources, batched per server.

Adding a source is one module (ending with its `SourceKind`) and one line here: the schema, the
parser, `autozero validate` and the runtime all find it in `SOURCES`. Importing this imports no
client library (each source imports its own when it first reads).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from autozero.engine.readings import Failure, Observation
from autozero.policy.model import MetricSpec
from autozero.sources import mrq, prometheus, rabbitmq, redis_keys, rq
from autozero.sources.base import BaseSource, Context, SourceError, SourceKind

#: By key, in the order the schema lists them.
SOURCES: dict[str, SourceKind] = {
    kind.key: kind
    for kind in (
        mrq.KIND,
        redis_keys.KIND,
        rq.KIND,
        rabbitmq.KIND,
        prometheus.KIND,
    )
}


def build_source(metric: MetricSpec, ctx: Context) -> BaseSource:
    """The source for a declared metric (SourceConfigError if its settings cannot work)."""
    return SOURCES[metric.source].build(metric.name, metric.settings, ctx)


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
