"""The jobs the node's tests enqueue on RQ; they run in the worker image's Pods.

Each run is recorded in Redis (the job's connection): a run that started and never finished is a
job a Pod's shutdown interrupted, and a second run of one job is one that was redone."""

from __future__ import annotations

import os
import time

from rq import get_current_job


def work(seconds: float, token: str) -> str:
    job = get_current_job()
    assert job is not None
    store = job.connection
    pod = os.environ.get("POD_NAME", "?")
    store.hincrby("node-e2e:started", token, 1)
    time.sleep(seconds)
    store.hincrby("node-e2e:finished", token, 1)
    store.hset("node-e2e:pod", token, pod)
    return pod
