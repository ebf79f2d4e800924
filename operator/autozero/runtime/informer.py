"""A list+watch cache of one resource in one namespace (or all), fed by the apiserver's watch.

Each informer runs one thread: a paginated LIST, then WATCH from the list's resourceVersion with
bookmarks, a server-side timeout (drawn at random, so reconnects spread out) and a client-side
read timeout (bookmarks arrive about once a minute, so a longer silence is a dead connection).

- A stream that ends (the server's timeout) or drops after it delivered something resumes at once
  from the last resourceVersion seen (bookmarks move it on): one request, no re-list.
- 410 Gone (an HTTP status, or an ERROR event with code 410: the apiserver no longer has that
  resourceVersion, after a restart or a long outage) re-lists and emits what changed meanwhile,
  deletes included.
- Any other failure is reported (`error`, `on_error`) and retried with bounded exponential backoff
  and jitter; 401/403 (`InformerForbidden`) are reported the same way, never retried at full speed.
  An apiserver that does not answer (refused, reset, 429/5xx: a restart) is tried again at least
  every `RECONNECT_MAX` seconds: it is back within seconds, and a watch that came back half a
  minute after it would leave the runtime deciding on counts it no longer sees change.

A *scoped* informer keeps only the objects it was asked for (`want`): a sharded replica lists and
watches the whole namespace (a label selector cannot name a replica's share of users' workloads)
but caches only what its policies name. An object becomes *known* when a LIST that began after it
was wanted, a watch event, or a GET (`prime`) said what it is; until then `known` is False and the
caller asks the API itself, so nothing acts on an entry that is missing or older than the watch.

The cache keeps slim records (`records.py`), never the objects. `on_change(old, new)` is called
from the informer's thread for every meaningful difference (new None: deleted; old None: added,
including every object of the first list), so the runtime can evaluate the affected group at once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from urllib3.exceptions import HTTPError, ReadTimeoutError

from autozero.runtime.errors import InformerError, from_exception
from autozero.runtime.kubeapi import open_get
from autozero.runtime.records import (
    HPARecord,
    WorkloadProjector,
    WorkloadRecord,
    object_key,
    project_hpa,
    resource_version,
)
from autozero.runtime.resources import HPA, Resource, ResourceResolver

log = logging.getLogger(__name__)

#: The longest wait between two tries to reach an apiserver that did not answer: the shortest
#: polling interval (`runtime.loop` polls at most once a second), so a watch is back within one
#: interval of the apiserver's return, well inside the 3 intervals a fault may take to converge.
RECONNECT_MAX = 1.0

R = TypeVar("R")
Key = tuple[str, str]  # (namespace, name); namespace "" for a cluster-scoped object
#: A scoped LIST leaves out what became wanted while its pages came; up to this many are then
#: fetched one GET each, more by another LIST (a fleet being built wants thousands at once)...
REFETCH_MAX = 100
#: ...unless they are fewer than this share of what the last LIST held: a take-over of 1,000
#: workloads in a namespace of 100,000 costs 1,000 small GETs rather than 200 pages of 500.
REFETCH_SHARE = 4


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """Timings of the list and watch requests; tests shorten the backoff."""

    page_size: int = 500  # objects per LIST page: bounds the memory a list needs at once
    watch_seconds: tuple[int, int] = (300, 600)  # server-side timeoutSeconds, drawn per watch
    connect_timeout: float = 10.0
    read_timeout: float = 150.0  # silence longer than this on a watch: a dead connection
    list_timeout: float = 60.0  # one LIST page, whole request
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


class Backoff:
    """Bounded exponential backoff with jitter: the nth delay is drawn from [d/2, d] where
    d = min(maximum, initial * 2**n), so many informers failing together do not retry together."""

    def __init__(
        self, initial: float, maximum: float, draw: Callable[[], float] = random.random
    ) -> None:
        self.initial, self.maximum, self.draw = initial, maximum, draw
        self.failures = 0

    def next(self, maximum: float | None = None) -> float:
        """The next delay; `maximum`, when given and lower, caps this one (the count goes on)."""
        cap = self.maximum if maximum is None else min(self.maximum, maximum)
        ceiling = min(cap, self.initial * (1 << min(self.failures, 32)))
        self.failures += 1
        return ceiling * (0.5 + 0.5 * self.draw())

    def reset(self) -> None:
        self.failures = 0


@dataclass
class InformerStats:
    """Counters, written by the informer's thread only (read them for tests and metrics)."""

    lists: int = 0  # complete LISTs (the first one, and one per 410)
    list_requests: int = 0  # LIST pages requested
    watch_requests: int = 0
    gone: int = 0  # 410s received
    read_timeouts: int = 0  # watches closed for silence
    errors: int = 0  # failed attempts (each reported through on_error)
    events: int = 0  # ADDED, MODIFIED and DELETED events applied
    bookmarks: int = 0
    callback_errors: int = 0  # exceptions raised by on_change / on_error (logged)
    gets: int = 0  # single objects fetched (a scoped informer: what a LIST did not cover)

    @property
    def requests(self) -> int:
        """Requests this informer sent for its resource (discovery excluded)."""
        return self.list_requests + self.watch_requests + self.gets


class _Gone(Exception):
    """410: the resourceVersion to resume from is no longer available; re-list."""


@functools.cache
def _raw_watch_class() -> Any:
    """`kubernetes.watch.Watch`, made to yield events as plain dicts: with no return type it builds
    no model (and its own resourceVersion tracking is off: the informer tracks it)."""
    from kubernetes import watch

    class RawWatch(watch.Watch):
        def get_return_type(self, func: Any) -> None:  # noqa: ARG002 (Watch's signature)
            return None

    return RawWatch


class Informer(ABC, Generic[R]):
    """One resource's list+watch cache in `namespace` (None: all namespaces).

    Not started on creation: call `start()`. `stop()` is prompt (it shuts the open stream's
    socket). Reads (`get`, `items`) are safe from any thread.
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str | None,
        *,
        on_change: Callable[[R | None, R | None], None] | None = None,
        on_error: Callable[[InformerError | None], None] | None = None,
        settings: WatchSettings | None = None,
        scoped: bool = False,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace or None
        self.on_change = on_change
        self.on_error = on_error
        self.settings = settings or WatchSettings()
        self.stats = InformerStats()
        self.resource: Resource | None = None
        self._cache: dict[Key, R] = {}
        self._index: dict[Hashable, dict[Key, R]] = {}
        self._lock = threading.Lock()
        self._resource_version: str | None = None
        self._error: InformerError | None = None
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None  # the open LIST or WATCH response, for stop() to cut
        self._response_lock = threading.Lock()
        self._watch: Any = None
        # Scoped: the keys to keep (None: every object), those whose state is known, and how
        # many LISTs have replaced the cache (a GET begun before one may be older than it).
        self._wanted: set[Key] | None = set() if scoped else None
        self._known: set[Key] = set()
        self._lists = 0
        self._listed_total = 0  # objects the last LIST returned, kept or not
        self._listed = threading.Condition(self._lock)  # notified when a key may be known
        self._relist_asked = False  # many wanted at once: one LIST rather than a GET each
        self._watching = False

    # -- what a subclass provides ------------------------------------------------------------

    @property
    @abstractmethod
    def what(self) -> str:
        """The resource and scope, for errors and logs."""

    @abstractmethod
    def _resolve(self) -> Resource:
        """Find the resource (discovery); raises InformerError. Called until it succeeds."""

    @abstractmethod
    def _project(self, obj: Mapping[str, Any]) -> R:
        """The slim record of one object."""

    def _index_key(self, record: R) -> Hashable | None:  # noqa: ARG002 (no index by default)
        """A secondary index's key for `record` (None: not indexed); see `indexed()`."""
        return None

    # -- the public interface ----------------------------------------------------------------

    def start(self) -> Informer[R]:
        if self._thread is not None:
            raise RuntimeError(f"informer for {self.what} already started")
        self._thread = threading.Thread(target=self._run, name=f"informer {self.what}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the thread (prompt: the open stream is shut); False if it is still running after
        `timeout` (a discovery request in flight: it ends at its own timeout)."""
        self._stopping.set()
        self._interrupt()
        with self._lock:
            self._listed.notify_all()  # a `prime` waiting for a LIST: there will be none
        if self._thread is None:
            return True
        if self._thread is threading.current_thread():  # stopped from a callback: it ends next
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Whether the first LIST has completed (within `timeout` seconds)."""
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def error(self) -> InformerError | None:
        """The last failure, until a list or watch succeeds again."""
        return self._error

    @property
    def resource_version(self) -> str | None:
        """The resourceVersion a watch resumes from (None: the next step is a LIST)."""
        return self._resource_version

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def get(self, namespace: str, name: str) -> R | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[R]:
        """Every record, or those of `namespace` (a cluster-wide informer holds them all)."""
        with self._lock:
            if namespace is None:
                return list(self._cache.values())
            return [r for (ns, _), r in self._cache.items() if ns == namespace]

    def indexed(self, key: Hashable) -> list[R]:
        """The records whose `_index_key` is `key`."""
        with self._lock:
            return list(self._index.get(key, {}).values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    # -- scope (a scoped informer only) --------------------------------------------------------

    @property
    def scoped(self) -> bool:
        return self._wanted is not None

    def want(self, namespace: str, name: str) -> None:
        """Keep this object from now on (it is not known until a list, event or GET says)."""
        with self._lock:
            if self._wanted is not None:
                self._wanted.add((namespace, name))

    def unwant(self, namespace: str, name: str) -> None:
        """Keep it no longer: its entry is dropped (no change is emitted: nobody asks for it)."""
        key = (namespace, name)
        with self._lock:
            if self._wanted is None:
                return
            self._wanted.discard(key)
            self._known.discard(key)
            old = self._cache.pop(key, None)
            if old is not None:
                self._remove_from_index(key, old)

    def known(self, namespace: str, name: str) -> bool:
        """Whether `get` answers for this object: always, unscoped; once synced for it, scoped."""
        if not self._synced.is_set():
            return False
        with self._lock:
            return self._wanted is None or (namespace, name) in self._known

    def prime(self, namespace: str, name: str) -> bool:
        """Fetch a wanted object the cache does not know yet, so that the first pass finds it:
        one GET, or, when many wanted objects are unknown (a take-over, `_many`), wait
        for one LIST that covers them all. Only once synced (the first LIST, and the GETs after
        it, cover the rest). True when it is known afterwards; a failed GET is logged and leaves
        it unknown (the caller reads it itself, and the next LIST covers it)."""
        if not self._synced.is_set() or self.resource is None:
            return self.known(namespace, name)
        key = (namespace, name)
        with self._lock:
            if self._wanted is None or key in self._known:
                return True
            lists = self._lists
            if self._many(len(self._wanted) - len(self._known)):
                # A take-over or a fleet being built: the next LIST covers them all at once.
                wanted = self._wanted
                self._ask_relist()
                self._listed.wait_for(
                    lambda: key in self._known or key not in wanted or self._stopping.is_set(),
                    self.settings.list_timeout,
                )
                return key in self._known
        return self._fetch(key, lists)

    def _many(self, unknown: int) -> bool:
        """Whether `unknown` objects are better fetched by one LIST than by a GET each."""
        return unknown > max(REFETCH_MAX, self._listed_total // REFETCH_SHARE)

    def _ask_relist(self) -> None:
        """(Under the lock.) Make the thread LIST again: cut the watch under way, if any."""
        self._relist_asked = True
        if self._watching:
            self._interrupt()

    def _get_object(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """GET one object (None: 404); raises ApiException, urllib3 or socket errors."""
        from kubernetes.client.exceptions import ApiException

        assert self.resource is not None
        path = f"{self.resource.path(namespace or None)}/{name}"
        try:
            response = open_get(self.api_client, path, (), self.settings.list_timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        try:
            found: Mapping[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return found

    def _fetch(self, key: Key, lists: int) -> bool:
        """Make a wanted key known by a GET, unless a watch event or a LIST did meanwhile."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.stats.gets += 1
            obj = self._get_object(*key)
            record = None if obj is None else self._project(obj)
        except (ApiException, HTTPError, OSError, ValueError) as exc:
            log.warning("informer for %s: GET %s/%s: %s", self.what, *key, exc)
            return False
        with self._lock:
            if self._wanted is None or key not in self._wanted or lists != self._lists:
                return False  # unwanted meanwhile, or a LIST replaced the cache: it decides
            if key in self._known:
                return True  # a watch event came first: it is as new as the stream
            if record is not None:
                self._cache[key] = record
                self._add_to_index(key, record)
            self._known.add(key)
            self._listed.notify_all()
        return True

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not self._stopping.is_set():
            try:
                if self.resource is None:
                    self.resource = self._resolve()
                if self._relist_asked:
                    self._resource_version = None
                if self._resource_version is None:
                    self._relist()
                    backoff.reset()
                    continue  # (a stop during the list is seen by the loop)
                if self._watch_once():
                    backoff.reset()
                    continue
                delay = backoff.next()  # a stream that ended at once, without an error
            except _Gone:
                self.stats.gone += 1
                self._resource_version = None  # re-list at once: nothing to wait for
                continue
            except InformerError as error:
                self._failed(error)
                delay = backoff.next(RECONNECT_MAX if error.transient else None)
            except Exception as exc:  # an answer we cannot read: keep the informer alive, loudly
                log.exception("informer for %s: unexpected failure", self.what)
                self._failed(InformerError(self.what, f"unexpected {type(exc).__name__}: {exc}"))
                delay = backoff.next()
            self._stopping.wait(delay)

    def _path(self) -> str:
        assert self.resource is not None
        return self.resource.path(self.namespace if self.resource.namespaced else None)

    def _open(self, query: list[tuple[str, str | int | bool]], timeout: Any) -> Any:
        """Send one GET and register its response so that stop() can cut it."""
        response = open_get(self.api_client, self._path(), query, timeout)
        with self._response_lock:
            self._response = response
        if self._stopping.is_set():
            self._interrupt()
        return response

    def _interrupt(self) -> None:
        with self._response_lock:
            response = self._response
        if response is not None:
            # Already closed or released: there is nothing left to cut, which is the goal.
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                response.shutdown()

    def _forget_response(self) -> None:
        with self._response_lock:
            self._response = None

    def _request_failed(self, exc: Exception) -> InformerError:
        if int(getattr(exc, "status", 0) or 0) == 410:
            raise _Gone from exc
        return from_exception(self.what, exc)

    def _relist(self) -> None:
        """LIST every page, replace the cache, and emit the differences from the old one."""
        from kubernetes.client.exceptions import ApiException

        fresh: dict[Key, R] = {}
        total = 0
        version: str | None = None
        token: str | None = None
        with self._lock:  # what this LIST covers: the keys wanted before it began
            covered = set(self._wanted) if self._wanted is not None else None
            self._relist_asked = False
        while True:
            query: list[tuple[str, str | int | bool]] = [("limit", self.settings.page_size)]
            if token:
                query.append(("continue", token))
            self.stats.list_requests += 1
            try:
                response = self._open(query, self.settings.list_timeout)
                try:
                    page = json.loads(response.data)
                finally:
                    response.release_conn()
                    self._forget_response()
            except (ApiException, HTTPError, OSError) as exc:
                if self._stopping.is_set():
                    return
                raise self._request_failed(exc) from exc  # 410: the continue token expired
            for obj in page.get("items") or ():
                total += 1
                key = object_key(obj)
                if self._wanted is None or key in self._wanted:  # scoped: filtered on ingest
                    fresh[key] = self._project(obj)
            meta = page.get("metadata") or {}
            version = version or meta.get("resourceVersion")
            token = meta.get("continue")
            if not token:
                break
            if self._stopping.is_set():
                return
        if not version:
            raise InformerError(self.what, "the LIST answer carries no resourceVersion")
        uncovered: dict[Key, R | None] = {}
        with self._lock:
            old = self._cache
            if self._wanted is not None and covered is not None:
                wanted = self._wanted
                fresh = {key: record for key, record in fresh.items() if key in wanted}
                # Wanted while the pages came: absent from them proves nothing; GET them below.
                for key in wanted - covered - fresh.keys():
                    uncovered[key] = old.get(key)
                self._known = (covered & wanted) | fresh.keys()
            self._cache = fresh
            self._listed_total = total
            self._lists += 1
            lists = self._lists
            self._listed.notify_all()
            self._index = {}
            for key, record in fresh.items():
                self._add_to_index(key, record)
            # From here the cache is changed by other threads too (`want`, `prime`, `unwant`):
            # the differences are taken from what this LIST found.
            listed = dict(fresh)
        self._resource_version = version
        self.stats.lists += 1
        self._clear_error()
        self._synced.set()
        for key, record in listed.items():
            was = old.get(key)
            if was != record:
                self._emit(was, record)
        for key, was in old.items():
            if key not in listed and key not in uncovered:
                self._emit(was, None)
        if self._many(len(uncovered)):  # many wanted during the pages: a LIST is cheaper
            with self._lock:
                self._relist_asked = True
            return
        for key, was in uncovered.items():
            if self._stopping.is_set():
                return
            if self._fetch(key, lists):
                now = self.get(*key)
                if now != was:
                    self._emit(was, now)

    def _open_watch(self, **kwargs: Any) -> Any:
        """The function `Watch.stream` calls (it adds watch=True, _preload_content=False)."""
        query: list[tuple[str, str | int | bool]] = [
            ("watch", True),
            ("allowWatchBookmarks", True),
            ("resourceVersion", kwargs["resource_version"]),
            ("timeoutSeconds", kwargs["timeout_seconds"]),
        ]
        self.stats.watch_requests += 1
        timeouts = (self.settings.connect_timeout, self.settings.read_timeout)
        response = self._open(query, timeouts)
        with self._lock:
            self._watching = True
            if self._relist_asked:  # asked while this watch was being opened
                self._interrupt()
        self._clear_error()
        return response

    def _watch_once(self) -> bool:
        """One WATCH from the last resourceVersion, until the server ends it or it drops.

        True when the stream was healthy (it delivered at least one event): resume at once.
        """
        from kubernetes.client.exceptions import ApiException

        if self._watch is None:
            self._watch = _raw_watch_class()()
        low, high = self.settings.watch_seconds
        delivered = False
        try:
            for event in self._watch.stream(
                self._open_watch,
                resource_version=self._resource_version,
                timeout_seconds=random.randint(low, high),
            ):
                if self._stopping.is_set() or self._relist_asked:
                    break
                delivered = True
                self._apply(event)
        except ReadTimeoutError:  # silence: reconnect from where we are
            self.stats.read_timeouts += 1
            return True
        except (HTTPError, OSError) as exc:  # a connection lost mid-stream, or refused
            if delivered or self._stopping.is_set() or self._relist_asked:
                return True
            raise self._request_failed(exc) from exc
        except ApiException as exc:  # an HTTP status, or an ERROR event (watch.py raises it)
            raise self._request_failed(exc) from exc
        finally:
            with self._lock:
                self._watching = False
            self._forget_response()
        return delivered or self._relist_asked

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("raw_object") or event.get("object") or {}
        version = resource_version(obj)
        if kind == "BOOKMARK":
            self.stats.bookmarks += 1
        elif kind in ("ADDED", "MODIFIED", "DELETED"):
            key = object_key(obj)
            new = None if kind == "DELETED" else self._project(obj)
            with self._lock:
                if self._wanted is not None:
                    if key not in self._wanted:  # outside the scope: not kept
                        new = None
                    else:
                        self._known.add(key)
                old = self._cache.pop(key, None)
                if old is not None:
                    self._remove_from_index(key, old)
                if new is not None:
                    self._cache[key] = new
                    self._add_to_index(key, new)
            self.stats.events += 1
            if old != new:
                self._emit(old, new)
        else:
            log.warning("informer for %s: ignored a %r event", self.what, kind)
        if version:
            self._resource_version = version

    def _add_to_index(self, key: Key, record: R) -> None:
        index = self._index_key(record)
        if index is not None:
            self._index.setdefault(index, {})[key] = record

    def _remove_from_index(self, key: Key, record: R) -> None:
        index = self._index_key(record)
        if index is not None and index in self._index:
            self._index[index].pop(key, None)
            if not self._index[index]:
                del self._index[index]

    def _emit(self, old: R | None, new: R | None) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(old, new)
        except Exception:
            self.stats.callback_errors += 1
            log.exception("informer for %s: on_change failed", self.what)

    def _failed(self, error: InformerError) -> None:
        self.stats.errors += 1
        repeated = self._error is not None and str(self._error) == str(error)
        self._error = error
        (log.debug if repeated else log.warning)("informer for %s: %s", self.what, error)
        self._report(error)

    def _clear_error(self) -> None:
        if self._error is not None:
            self._error = None
            log.info("informer for %s: recovered", self.what)
            self._report(None)

    def _report(self, error: InformerError | None) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(error)
        except Exception:
            self.stats.callback_errors += 1
            log.exception("informer for %s: on_error failed", self.what)


def _scope(namespace: str | None) -> str:
    return f"in namespace {namespace}" if namespace else "in all namespaces"


class WorkloadInformer(Informer[WorkloadRecord]):
    """Workloads of one kind (apps/v1 Deployment, a CRD with `/scale`...): replica counts read
    through the kind's replica paths (`resources.ReplicaPaths`)."""

    def __init__(
        self,
        api_client: Any,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        resolver: ResourceResolver | None = None,
        on_change: Callable[[WorkloadRecord | None, WorkloadRecord | None], None] | None = None,
        on_error: Callable[[InformerError | None], None] | None = None,
        settings: WatchSettings | None = None,
        scoped: bool = False,
    ) -> None:
        super().__init__(
            api_client,
            namespace,
            on_change=on_change,
            on_error=on_error,
            settings=settings,
            scoped=scoped,
        )
        self.api_version, self.kind = api_version, kind
        self.resolver = resolver or ResourceResolver(api_client)
        self._projector: WorkloadProjector | None = None

    @property
    def what(self) -> str:
        return f"{self.kind} ({self.api_version}) {_scope(self.namespace)}"

    def _resolve(self) -> Resource:
        resource = self.resolver.resolve(self.api_version, self.kind)
        assert resource.paths is not None  # a workload resolves with its paths or raises
        self._projector = WorkloadProjector(resource.paths)
        return resource

    def _project(self, obj: Mapping[str, Any]) -> WorkloadRecord:
        assert self._projector is not None
        return self._projector(obj)


class HPAInformer(Informer[HPARecord]):
    """HorizontalPodAutoscalers (autoscaling/v2), indexed by what they scale."""

    @property
    def what(self) -> str:
        return f"HorizontalPodAutoscaler (autoscaling/v2) {_scope(self.namespace)}"

    def _resolve(self) -> Resource:
        return HPA

    def _project(self, obj: Mapping[str, Any]) -> HPARecord:
        return project_hpa(obj)

    def _index_key(self, record: HPARecord) -> Hashable:
        return (record.namespace, record.target_group, record.target_kind, record.target_name)

    def targeting(self, namespace: str, api_version: str, kind: str, name: str) -> list[HPARecord]:
        """The HPAs of `namespace` that scale `kind`/`name` (of `api_version`'s group)."""
        group = api_version.rpartition("/")[0]
        return self.indexed((namespace, group, kind, name))
