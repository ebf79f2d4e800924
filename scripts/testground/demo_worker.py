"""A worker process for the demo: one per emulated GCE instance, draining an MRQ raw queue.

It follows MRQ's layout for raw queues (mrq/redishelpers.py, mrq/job.py): it pops a job from the
Redis list `mrq:q:<queue>`, records it in MongoDB's `mrq_jobs` with `status: "started"` while it
works (so autozero sees it in flight), then marks it `success`. On SIGTERM (the instance is being
deleted) it finishes the job in hand and exits. DEMO_STARTUP_SECONDS stands for a startup
script (caches, downloads) it runs once per process: a resumed instance does not run it again.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import pymongo
import redis


def main() -> None:
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    queue = os.environ["DEMO_QUEUE"]
    seconds = float(os.environ.get("DEMO_JOB_SECONDS", "0.2"))
    # No read timeout: a VM suspended into the pool (--warm) freezes this process in its BLPOP,
    # and a signal after the resume would end a timed read in TimeoutError (Python's deadline
    # passed while frozen), the reply dropped; BLPOP's own timeout bounds each wait.
    store = redis.Redis.from_url(
        os.environ["DEMO_REDIS_URL"], socket_timeout=None, socket_connect_timeout=5
    )
    jobs: Any = pymongo.MongoClient(
        os.environ["DEMO_MONGO_URL"], serverSelectionTimeoutMS=5000
    ).get_default_database()["mrq_jobs"]
    instance = os.environ.get("GCE_INSTANCE") or os.environ.get("POD_NAME", "local")
    time.sleep(float(os.environ.get("DEMO_STARTUP_SECONDS", "0")))
    while not stopping:
        popped = store.blpop([f"mrq:q:{queue}"], timeout=1)
        if popped is None:
            continue
        job_id = str(uuid.uuid4())
        jobs.insert_one(
            {
                "_id": job_id,
                "queue": queue,
                "status": "started",
                "params": str(popped[1]),
                "worker": instance,
                "pid": os.getpid(),
                "startedAt": time.time(),
            }
        )
        time.sleep(seconds)
        jobs.update_one({"_id": job_id}, {"$set": {"status": "success"}})
        store.incr("demo:processed")


if __name__ == "__main__":
    main()
