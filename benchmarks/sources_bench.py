"""Source latency and throughput against a real Redis started on loopback.

Run: .venv/bin/python benchmarks/sources_bench.py [--pushes 1000] [--queues 1000]

1. Push wake: LPUSH on a watched key -> the watch's callback (keyspace notifications), median and
   p99 over N pushes; beside it, the time an LPUSH waits for the next poll at a 15 s interval
   (half the interval on average) and the cost of the read itself.
2. Reads per second for many queues on one Redis server through the batched pipeline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from autozero.policy.model import MetricSpec
from autozero.sources.base import Context
from autozero.sources.push import KeyspaceWatch
from autozero.sources.registry import build_source, read_all
from testground.redis_server import RedisServer

CTX = Context(lambda _name, _key: "", timeout=5.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def push_latency(server: RedisServer, pushes: int) -> dict[str, float]:
    client = redis.Redis.from_url(server.url)
    arrived = threading.Event()
    watch = KeyspaceWatch.start(
        server.url, ["bench:jobs"], [], arrived.set, timeout=5.0, configure=True
    )
    assert watch.subscribed.wait(5)
    samples = []
    for _ in range(pushes):
        arrived.clear()
        start = time.perf_counter()
        client.lpush("bench:jobs", 1)
        if not arrived.wait(5):
            raise RuntimeError("a push never arrived")
        samples.append(time.perf_counter() - start)
    watch.stop()
    source = build_source(MetricSpec("m", "redis", {"url": server.url, "key": "bench:jobs"}), CTX)
    reads = []
    for _ in range(200):
        start = time.perf_counter()
        source.read()
        reads.append(time.perf_counter() - start)
    return {
        "push_median_ms": statistics.median(samples) * 1000,
        "push_p99_ms": percentile(samples, 0.99) * 1000,
        "read_median_ms": statistics.median(reads) * 1000,
    }


def batched_reads(server: RedisServer, queues: int, seconds: float) -> float:
    client = redis.Redis.from_url(server.url)
    pipe = client.pipeline(transaction=False)
    for n in range(queues):
        pipe.rpush(f"bench:q:{n}", *range(n % 7 + 1))
    pipe.execute()
    sources = [
        build_source(
            MetricSpec(
                f"m{n}", "redis", {"url": server.url, "key": f"bench:q:{n}", "type": "list"}
            ),
            CTX,
        )
        for n in range(queues)
    ]
    cycles = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        readings = read_all(sources)
        cycles += 1
    assert len(readings) == queues
    return cycles * queues / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    server = RedisServer()
    server.start()
    try:
        latency = push_latency(server, args.pushes)
        rate = batched_reads(server, args.queues, args.seconds)
    finally:
        server.stop()
    print(
        f"push wake over {args.pushes} LPUSHes: median {latency['push_median_ms']:.2f} ms, "
        f"p99 {latency['push_p99_ms']:.2f} ms"
    )
    print(
        f"poll-based: waits for the next poll (7.5 s on average at a 15 s interval), then one "
        f"read: median {latency['read_median_ms']:.2f} ms"
    )
    print(
        f"batched reads: {rate:,.0f} queue reads/s ({args.queues} queues on one Redis, "
        f"one pipeline per cycle)"
    )


if __name__ == "__main__":
    main()
