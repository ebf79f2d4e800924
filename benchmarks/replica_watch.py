"""Every change of the Deployments' `spec.replicas` in one namespace, timed when the watch saw it.

The KEDA comparison times many members at once (staggered wake trials, the sleep and outage rows);
polling each one's `/scale` every few milliseconds would load the apiserver both operators share.
One watch per namespace sees each write a few milliseconds after it is stored, and keeps the
history, so a trial that starts waiting after its change was seen still finds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException


class WatchFailed(RuntimeError):
    """The watch thread stopped on an error: every wait fails with it rather than time out."""


class ReplicaWatcher:
    """A thread that watches Deployments in `namespace` and records (monotonic time, replicas)
    for each name whenever its `spec.replicas` changes (the first sighting included)."""

    def __init__(self, api: Any, namespace: str, cancelled: threading.Event | None = None) -> None:
        self.apps = k8s.AppsV1Api(api)
        self.namespace = namespace
        self.history: dict[str, list[tuple[float, int]]] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._cancelled = cancelled or threading.Event()  # set: every wait stops at once
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _record(self, name: str, replicas: int, seen: float) -> None:
        with self._changed:
            entries = self.history.setdefault(name, [])
            if not entries or entries[-1][1] != replicas:
                entries.append((seen, replicas))
                self._changed.notify_all()

    def _run(self) -> None:
        try:
            version = ""
            while not self._stop.is_set():
                if not version:
                    listed = self.apps.list_namespaced_deployment(
                        self.namespace, _request_timeout=60
                    )
                    now = time.monotonic()
                    for item in listed.items:
                        self._record(item.metadata.name, item.spec.replicas or 0, now)
                    version = listed.metadata.resource_version
                stream = watch.Watch().stream(
                    self.apps.list_namespaced_deployment,
                    self.namespace,
                    resource_version=version,
                    timeout_seconds=30,
                    _request_timeout=60,
                )
                try:
                    for event in stream:
                        seen = time.monotonic()
                        item = event["object"]
                        version = item.metadata.resource_version
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._record(item.metadata.name, item.spec.replicas or 0, seen)
                        if self._stop.is_set():
                            return
                except ApiException as exc:
                    if exc.status != 410:  # Gone: list again from now
                        raise
                    version = ""
        except BaseException as exc:
            with self._changed:
                self._error = exc
                self._changed.notify_all()

    def first(
        self, name: str, wanted: Callable[[int], bool], *, since: float, timeout: float
    ) -> float | None:
        """The monotonic time of the first recorded change of `name` at or after `since` whose
        replicas satisfy `wanted`; None if there was none within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self._error is not None:
                    raise WatchFailed(f"watch of {self.namespace} failed: {self._error!r}")
                if self._cancelled.is_set():
                    raise WatchFailed(f"wait on {self.namespace}/{name} cancelled")
                for seen, replicas in self.history.get(name, []):
                    if seen >= since and wanted(replicas):
                        return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(timeout=min(left, 1.0))

    def replicas(self, name: str) -> int | None:
        with self._changed:
            entries = self.history.get(name)
            return entries[-1][1] if entries else None

    def between(self, name: str, start: float, end: float) -> list[tuple[float, int]]:
        """The replicas `name` had at `start` (as the first entry) and every change until `end`."""
        with self._changed:
            entries = list(self.history.get(name, []))
        before = [e for e in entries if e[0] <= start]
        during = [e for e in entries if start < e[0] <= end]
        return ([(start, before[-1][1])] if before else []) + during
