"""The job the chaos campaign's RQ workers run: it takes a few seconds and writes, in the worker's
own log, when it started and ended and on which worker, so the campaign can check from the
workers' side that no job was cut short by a scale-in and that every job was processed."""

from __future__ import annotations

import json
import os
import time


def _log(event: str, job: str) -> None:
    line = {
        "event": event,
        "job": job,
        "worker": os.environ.get("GCE_INSTANCE", "?"),
        "at": time.time(),
    }
    with open(os.environ["CHAOS_WORKER_LOG"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def work(job: str, seconds: float) -> str:
    _log("start", job)
    time.sleep(seconds)
    _log("end", job)
    return job
