"""A scoped informer keeps only the objects wanted of it (a sharded replica's share), and never
answers for one whose state it has not seen since it was wanted.

The apiserver is played by the test (its LIST pages and GETs), so that the moments that matter,
an object wanted while a LIST's pages come, or between a GET and its answer, are exact.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from autozero.runtime.informer import REFETCH_MAX, WorkloadInformer
from autozero.runtime.resources import BUILTIN_PATHS, Resource

NS = "team"
DEPLOYMENT = Resource(
    "apps/v1", "Deployment", "deployments", True, BUILTIN_PATHS[("apps", "Deployment")]
)


def deployment(name: str, replicas: int, version: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": name, "uid": name, "resourceVersion": str(version)},
        "spec": {"replicas": replicas},
    }


class Page:
    """A LIST page as `open_get` returns it."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.data = json.dumps(body).encode()

    def release_conn(self) -> None:
        pass


class Scripted(WorkloadInformer):
    """A scoped Deployment informer whose apiserver is `objects`; `on_page(n)` runs before the
    n-th LIST page is answered, `on_get(name)` before a GET is."""

    def __init__(self, objects: dict[str, dict[str, Any]], page_size: int = 2) -> None:
        super().__init__(None, "apps/v1", "Deployment", NS, scoped=True)
        self.objects = objects
        self.page_size = page_size
        self.on_page: Callable[[int], None] = lambda _n: None
        self.on_get: Callable[[str], None] = lambda _name: None
        self.gets: list[str] = []
        self.resource = self._resolve()

    def _resolve(self) -> Resource:
        from autozero.runtime.records import WorkloadProjector

        assert DEPLOYMENT.paths is not None
        self._projector = WorkloadProjector(DEPLOYMENT.paths)
        return DEPLOYMENT

    def _open(self, query: list[tuple[str, str | int | bool]], timeout: Any) -> Any:
        start = int(dict(query).get("continue", 0))
        self.on_page(start // self.page_size)
        names = sorted(self.objects)
        items = [self.objects[n] for n in names[start : start + self.page_size]]
        more = start + self.page_size < len(names)
        meta = {"resourceVersion": "100"} | (
            {"continue": str(start + self.page_size)} if more else {}
        )
        return Page({"items": items, "metadata": meta})

    def _get_object(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        self.gets.append(name)
        self.on_get(name)
        return self.objects.get(name)

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        self._apply({"type": kind, "raw_object": obj})


def names(informer: Scripted) -> list[str]:
    return sorted(r.name for r in informer.items())


def test_the_list_and_the_watch_keep_only_wanted_objects() -> None:
    informer = Scripted({n: deployment(n, 1) for n in ("a", "b", "c", "d", "e")})
    informer.want(NS, "b")
    informer.want(NS, "gone")
    informer._relist()
    assert names(informer) == ["b"]  # before the scope: all five
    assert informer.known(NS, "b")
    assert informer.known(NS, "gone")  # the LIST covered it: absent is an answer
    assert informer.get(NS, "gone") is None
    assert not informer.known(NS, "a")  # never wanted: the cache cannot say
    informer.event("MODIFIED", deployment("a", 3, 101))
    informer.event("MODIFIED", deployment("b", 4, 102))
    assert names(informer) == ["b"]
    record = informer.get(NS, "b")
    assert record is not None
    assert record.replicas == 4
    assert informer.gets == []  # everything came from the list and the watch


def test_an_object_wanted_while_the_list_pages_came_is_fetched_after_it() -> None:
    informer = Scripted({n: deployment(n, 1) for n in ("a", "b", "c", "d")})
    informer.want(NS, "c")

    def page(n: int) -> None:
        if n == 1:  # "a" and "b" were on page 0, already passed over
            informer.want(NS, "a")

    informer.on_page = page
    informer._relist()
    assert informer.gets == ["a"]  # before: "a" missing, and answered as not found
    assert names(informer) == ["a", "c"]
    assert informer.known(NS, "a")


def test_many_wanted_while_the_list_pages_came_make_another_list() -> None:
    count = REFETCH_MAX + 4
    informer = Scripted({f"w{n:04}": deployment(f"w{n:04}", 1) for n in range(count)})

    def page(n: int) -> None:
        if n == count // 2 - 1:  # the last page: all the others were passed over
            for name in informer.objects:
                informer.want(NS, name)

    informer.on_page = page
    informer._relist()
    assert informer.gets == []
    assert informer._relist_asked  # the informer's loop lists again at once
    informer.on_page = lambda _n: None
    informer._relist()
    assert len(informer) == count


def test_prime_fetches_a_newly_wanted_object_before_the_first_pass() -> None:
    informer = Scripted({n: deployment(n, 1) for n in ("a", "b")})
    informer._relist()
    informer._synced.set()
    assert len(informer) == 0
    informer.want(NS, "b")
    informer.want(NS, "missing")
    assert not informer.known(NS, "b")  # wanted, not seen yet: the caller must ask the API
    assert informer.prime(NS, "b")
    assert informer.prime(NS, "missing")
    assert informer.known(NS, "b")
    assert informer.known(NS, "missing")
    assert names(informer) == ["b"]
    assert informer.prime(NS, "b")
    assert informer.gets == ["b", "missing"]  # known things are not fetched again


@pytest.mark.parametrize(
    ("during_get", "replicas"),
    [
        pytest.param("event", 7, id="a-watch-event-while-the-get-ran-wins"),
        pytest.param("delete", None, id="a-delete-event-while-the-get-ran-wins"),
        pytest.param("relist", 5, id="a-list-while-the-get-ran-decides"),
        pytest.param("unwant", None, id="unwanted-while-the-get-ran-is-not-kept"),
    ],
)
def test_a_get_never_overwrites_what_the_watch_or_a_list_said_since(
    during_get: str, replicas: int | None
) -> None:
    informer = Scripted({"a": deployment("a", 1)})
    informer._relist()
    informer._synced.set()
    informer.want(NS, "a")

    def meanwhile(_name: str) -> None:
        if during_get == "event":
            informer.event("MODIFIED", deployment("a", 7, 200))
        elif during_get == "delete":
            informer.event("DELETED", deployment("a", 7, 200))
        elif during_get == "relist":
            informer.objects["a"] = deployment("a", 5, 300)
            informer._relist()
        else:
            informer.unwant(NS, "a")
        informer.objects["a"] = deployment("a", 1)  # what the GET answers: older

    informer.on_get = meanwhile
    informer.prime(NS, "a")
    record = informer.get(NS, "a")
    assert (record.replicas if record else None) == replicas


def test_an_unwanted_object_is_dropped_and_must_be_seen_again_once_wanted() -> None:
    informer = Scripted({n: deployment(n, 1) for n in ("a", "b")})
    informer.want(NS, "a")
    informer.want(NS, "b")
    informer._relist()
    informer._synced.set()
    informer.unwant(NS, "a")
    assert names(informer) == ["b"]
    informer.event("MODIFIED", deployment("a", 9, 150))  # while nobody wanted it: not kept
    assert names(informer) == ["b"]
    informer.want(NS, "a")  # a policy that names it comes (back)
    assert not informer.known(NS, "a")  # its old entry, if kept, would be stale
    informer.objects["a"] = deployment("a", 9, 150)
    informer.prime(NS, "a")
    record = informer.get(NS, "a")
    assert record is not None
    assert record.replicas == 9


def test_an_unscoped_informer_keeps_everything_and_knows_it_once_synced() -> None:
    informer = Scripted({n: deployment(n, 1) for n in ("a", "b")})
    informer._wanted = None  # as created without scoped=True
    informer._relist()
    informer._synced.set()
    assert names(informer) == ["a", "b"]
    assert informer.known(NS, "zzz")
    assert informer.prime(NS, "a")
    assert informer.gets == []


def test_a_policy_leaving_while_a_list_reports_its_changes_does_not_break_the_list() -> None:
    """Other threads change a scoped cache (a policy detached, another primed) while the
    informer's thread reports what a LIST changed: seen at 30,000 groups as "dictionary changed
    size during iteration", the LIST lost and made again."""
    informer = Scripted({n: deployment(n, 1) for n in ("a", "b", "c")})
    for name in ("a", "b", "c"):
        informer.want(NS, name)
    informer.on_change = lambda old, new: informer.unwant(NS, "c")  # a detach, meanwhile
    informer._relist()
    assert informer.stats.lists == 1
    assert names(informer) == ["a", "b"]


@pytest.mark.parametrize(
    ("namespace_size", "taken_over", "lists", "gets"),
    [
        pytest.param(400, 150, 2, 0, id="a-third-of-a-small-namespace-one-list"),
        pytest.param(4000, 150, 1, 150, id="a-few-of-a-large-namespace-a-get-each"),
    ],
)
def test_a_take_over_is_fetched_by_the_cheaper_of_a_list_and_gets(
    namespace_size: int, taken_over: int, lists: int, gets: int
) -> None:
    informer = Scripted({f"w{n:05}": deployment(f"w{n:05}", 1) for n in range(namespace_size)})
    informer.page_size = 500
    informer._relist()
    informer._synced.set()
    relists: list[threading.Thread] = []

    def ask_relist() -> None:  # as the informer's thread would: once the lock is free
        relists.append(threading.Thread(target=informer._relist))
        relists[-1].start()

    informer._ask_relist = ask_relist  # type: ignore[method-assign]
    for n in range(taken_over):
        informer.want(NS, f"w{n:05}")
    assert all(informer.prime(NS, f"w{n:05}") for n in range(taken_over))
    assert (1 + len(relists), len(informer.gets)) == (lists, gets)
