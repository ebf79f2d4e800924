"""The chaos campaign's workers: the followers that stand in for a kubelet, and the queue
consumers they (and the emulator, for `mig-run`) start as processes.

Run as a process: `python chaos_workers.py rabbitmq` (a StatefulSet replica: a RabbitMQ consumer,
prefetch 1, acknowledging after the job) or `python chaos_workers.py mrq` (an instance of the
`mig-run` group: an MRQ raw-queue worker, as scripts/testground/demo_worker.py). Both take their
queue and servers from CHAOS_* variables, log each job's start and end with chaos_jobs (the lines
the invariants read), and on SIGTERM finish the job in hand, then exit. A job is the message
`<job> <seconds>`. The RabbitMQ consumer reconnects after a broker restart; a job whose ack the
restart lost is delivered again and runs twice, which the campaign allows (each job must end
once at least).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import chaos_jobs


class Followers:
    """What a kubelet would do for a workload: as many worker processes as it has replicas, the
    newest stopped with SIGTERM (the job in hand finishes), as a StatefulSet drops its highest
    ordinal first."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        replicas: Callable[[], int],
    ) -> None:
        self.name, self.command, self.env, self.replicas = name, command, env, replicas
        self.running: list[subprocess.Popen[bytes]] = []
        self.stopping: list[subprocess.Popen[bytes]] = []
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, name=f"followers-{name}", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.3):
            try:
                want = self.replicas()
            except Exception:  # the apiserver restarting: keep what runs, ask again
                continue
            while len(self.running) < want:
                self.count += 1
                env = {**self.env, "GCE_INSTANCE": f"{self.name}-{self.count}"}
                self.running.append(subprocess.Popen(self.command, env=env, start_new_session=True))
            while len(self.running) > want:
                process = self.running.pop()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                self.stopping.append(process)
            self.stopping = [p for p in self.stopping if p.poll() is None]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for process in self.running + self.stopping:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _on_sigterm() -> threading.Event:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    return stopping


def _job(body: bytes | str) -> None:
    job, seconds = (body.decode() if isinstance(body, bytes) else body).split()
    chaos_jobs.work(job, float(seconds))


def rabbitmq() -> None:
    """Consume CHAOS_QUEUE at CHAOS_AMQP_URL until SIGTERM; across broker restarts."""
    import pika
    import pika.exceptions

    stopping = _on_sigterm()
    parameters = pika.URLParameters(os.environ["CHAOS_AMQP_URL"])
    parameters.socket_timeout = 5
    parameters.connection_attempts = 1
    parameters.heartbeat = 10
    queue = os.environ["CHAOS_QUEUE"]
    while not stopping.is_set():
        try:
            connection = pika.BlockingConnection(parameters)
            channel = connection.channel()
            channel.queue_declare(queue, durable=True)
            channel.basic_qos(prefetch_count=1)
            for method, _properties, body in channel.consume(queue, inactivity_timeout=0.5):
                if method is not None:
                    _job(body)
                    channel.basic_ack(method.delivery_tag)
                if stopping.is_set():
                    break
            channel.cancel()  # a message prefetched meanwhile goes back with the channel
            connection.close()
        except (pika.exceptions.AMQPError, OSError):
            # The broker went away (restarted): an unacknowledged job comes back to the queue.
            stopping.wait(0.5)


def mrq() -> None:
    """Pop CHAOS_QUEUE (an MRQ raw queue) until SIGTERM; a job in hand is in MongoDB's mrq_jobs
    with status "started" while it runs, as MRQ keeps it (what autozero reads as in flight)."""
    import pymongo
    import redis

    stopping = _on_sigterm()
    queue = os.environ["CHAOS_QUEUE"]
    # No read timeout: on a VM suspended (`--standby`) while its BLPOP waits, the process is
    # frozen; a signal after the resume (SIGTERM when the VM stops) interrupts the read, and Python
    # retries it against a deadline that passed while frozen: TimeoutError, the reply dropped
    # with the connection. Blocking, the read goes on and gets it; BLPOP's own timeout (1 s)
    # bounds each wait.
    store = redis.Redis.from_url(
        os.environ["CHAOS_REDIS_URL"], socket_timeout=None, socket_connect_timeout=5
    )
    jobs: Any = pymongo.MongoClient(
        os.environ["CHAOS_MONGO_URL"], serverSelectionTimeoutMS=5000
    ).get_default_database()["mrq_jobs"]
    instance = os.environ.get("GCE_INSTANCE", "?")
    while not stopping.is_set():
        popped = store.blpop([f"mrq:q:{queue}"], timeout=1)
        if popped is None:
            continue
        record = str(uuid.uuid4())
        jobs.insert_one(
            {
                "_id": record,
                "queue": queue,
                "status": "started",
                "worker": instance,
                "startedAt": time.time(),
            }
        )
        _job(popped[1])
        jobs.update_one({"_id": record}, {"$set": {"status": "success"}})


if __name__ == "__main__":
    {"rabbitmq": rabbitmq, "mrq": mrq}[sys.argv[1]]()
