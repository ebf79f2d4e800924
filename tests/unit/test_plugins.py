"""Adding a metric source or a target kind is one module and one registry line.

The throwaway kinds (tests/support/throwaway_kinds.py) live outside the package; registering
them is the only change, and the schema, `autozero validate`, the parser, the tenancy checks, the
operator's access reviews and `autozero run` (the runtime's assembly, reads and writes) all
serve them. Then two structural checks keep the kinds in their modules: no module but a
registry lists the kinds, and none asks `isinstance` of a kind's own types.
"""

from __future__ import annotations

import ast
import copy
import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from autozero.controller.access import AccessReviewer
from autozero.policy.errors import PolicyInvalid
from autozero.policy.model import MetricSpec
from autozero.policy.parse import parse_policy
from autozero.policy.render import render_policy
from autozero.policy.schema import crd
from autozero.runtime.assemble import RuntimeConfig, assemble
from autozero.sources.registry import SOURCES
from autozero.standalone import StandaloneOptions, run
from autozero.targets.kind import AccessCheck
from autozero.targets.registry import TARGETS
from autozero.tenancy import refusals
from support import throwaway_kinds as throwaway

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "autozero"

MANIFEST: dict[str, Any] = {
    "apiVersion": "autozero.dev/v1alpha1",
    "kind": "ScalingPolicy",
    "metadata": {"name": "p", "namespace": "ns"},
    "spec": {
        "metrics": [{"name": "backlog", "tally": {"counter": "jobs"}}],
        "groups": [
            {
                "name": "workers",
                "target": {"memory": {"name": "w", "zone": "a"}},
                "capacity": {"minimum": 0, "maximum": 4, "default": 2},
                "activation": {"metric": "backlog", "idleFor": "2m"},
            }
        ],
    },
}


def manifest(**group: Any) -> dict[str, Any]:
    out = copy.deepcopy(MANIFEST)
    out["spec"]["groups"][0].update(group)
    return out


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return spec["properties"]["spec"]  # type: ignore[no-any-return]


def _messages(schema: dict[str, Any]) -> list[str]:
    return [rule["message"] for rule in schema.get("x-kubernetes-validations", ())]


def test_the_schema_gathers_their_fragments_and_rules(registered: None) -> None:
    metric = _spec()["properties"]["metrics"]["items"]
    assert metric["properties"]["tally"] == throwaway.SOURCE.schema()
    assert "set exactly one source: mrq, redis, rq, rabbitmq, prometheus or tally" in (
        _messages(metric)
    )
    group = _spec()["properties"]["groups"]["items"]
    target = group["properties"]["target"]
    assert target["properties"]["memory"] == throwaway.TARGET.schema()
    assert "set exactly one of gce, kubernetes or memory" in _messages(target)
    handoff = group["properties"]["handoff"]
    assert "memoryAutoscaler" in handoff["properties"]
    assert "handoff.memoryAutoscaler needs a memory target" in _messages(group)


@pytest.mark.parametrize(
    ("changed", "path", "message"),
    [
        pytest.param(
            {"metrics": [{"name": "backlog", "tally": {}}]},
            "spec.metrics[0].tally.counter",
            "is required",
            id="source-fragment",
        ),
        pytest.param(
            {"groups": [manifest(target={"memory": {"name": "w"}})["spec"]["groups"][0]]},
            "spec.groups[0].target.memory.zone",
            "is required",
            id="target-fragment",
        ),
        pytest.param(
            {
                "groups": [
                    manifest(
                        target={"kubernetes": {"apiVersion": "v1", "kind": "X", "name": "x"}},
                        handoff={"memoryAutoscaler": {"ceiling": 3}},
                    )["spec"]["groups"][0]
                ]
            },
            "spec.groups[0]",
            "handoff.memoryAutoscaler needs a memory target",
            id="handoff-needs-its-kind",
        ),
    ],
)
def test_validation_applies_their_fragments(
    registered: None, changed: dict[str, Any], path: str, message: str
) -> None:
    bad = copy.deepcopy(MANIFEST)
    bad["spec"].update(changed)
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(bad)
    assert (path, message) in [(e.path, e.message) for e in raised.value.errors]


def test_the_parser_and_the_renderer_use_their_hooks(registered: None) -> None:
    policy = parse_policy(manifest(handoff={"memoryAutoscaler": {"ceiling": 3}}))
    assert policy.metrics == (MetricSpec("backlog", "tally", {"counter": "jobs"}),)
    (group,) = policy.groups
    assert group.target == throwaway.MemoryTarget("w", "a")
    assert group.handoff == throwaway.MemoryHandoff(3)
    assert group.engine.activation is not None
    assert group.engine.activation.unit == "jobs"
    assert parse_policy(render_policy(policy)) == policy


def test_the_tenancy_checks_ask_their_kind(registered: None) -> None:
    policy = parse_policy(manifest(target={"memory": {"name": "w", "zone": "forbidden"}}))
    (refusal,) = refusals(policy, RuntimeConfig())
    assert (refusal.group, refusal.reason) == ("workers", "ZoneForbidden")


def test_the_operators_access_review_asks_their_kinds_checks(registered: None) -> None:
    class Denying(AccessReviewer):
        asked: list[AccessCheck]

        def allowed(self, namespace: str, service_account: str, check: AccessCheck) -> bool:
            self.asked.append(check)
            return False

    policy = parse_policy(manifest(handoff={"memoryAutoscaler": {"ceiling": 3}}))
    parts = assemble(policy, resolve_secret=lambda name, key: "")
    reviewer = Denying(api=None)
    reviewer.asked = []
    (refusal,) = reviewer.refusals(policy, "robot", parts.targets)
    assert [str(c) for c in reviewer.asked] == [
        "patch groups/scale.memory.example w",
        "create autoscalers.memory.example",
    ]
    assert refusal.reason == "TargetForbidden"


def test_the_runtime_assembles_reads_and_scales_them(registered: None) -> None:
    """`autozero run --once`: the runtime builds the source and the target through the kinds'
    hooks, reads the tally, observes the group in one batch, and wakes it."""
    throwaway.COUNTS["jobs"] = 5
    out = io.StringIO()
    policy = parse_policy(MANIFEST)
    assert run(MANIFEST, policy, StandaloneOptions(), out, once=True) == 0
    replicas, batches = throwaway.REPLICAS, throwaway.OBSERVED
    assert replicas == {"w": 2}
    assert batches == [{"workers"}]  # one batched observation, of the policy's one group
    assert "workers Wake 0->2" in out.getvalue()
    assert "[set 0 -> 2]" in out.getvalue()


def test_unregistered_they_are_unknown_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema is made again when the registries change, both ways."""
    with monkeypatch.context() as patch:
        patch.setitem(SOURCES, throwaway.SOURCE.key, throwaway.SOURCE)
        patch.setitem(TARGETS, throwaway.TARGET.key, throwaway.TARGET)
        parse_policy(MANIFEST)
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy(MANIFEST)
    unknown = {e.path for e in raised.value.errors if e.message.startswith("unknown field")}
    assert unknown == {"spec.metrics[0].tally", "spec.groups[0].target.memory"}


# Structural checks, on the package's source.


def _kind_modules() -> dict[str, str]:
    """Each registered kind's module -> its key."""
    modules = {kind.schema.__module__: key for key, kind in SOURCES.items()}
    modules.update({kind.schema.__module__: key for key, kind in TARGETS.items()})
    return modules


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("autozero", *path.relative_to(PACKAGE).with_suffix("").parts))
        yield name.removesuffix(".__init__"), ast.parse(path.read_text(), str(path))


#: Modules that may name several kinds, and why.
MAY_LIST_KINDS = {
    # KEDA's trigger types (redis, rabbitmq, prometheus), each translated to a source: a
    # converter names what it converts, and a new source needs no edit there.
    "autozero.convert.keda": "KEDA's trigger types",
}


def test_no_module_but_the_registries_lists_the_kinds() -> None:
    """A list, tuple, set or dict with two or more kinds' keys (of sources, of target kinds, or
    of handoffs) is a second list of the kinds, which a new kind would have to join."""
    families = [
        set(SOURCES),
        set(TARGETS),
        {k.handoff.key for k in TARGETS.values() if k.handoff is not None},
    ]
    found: list[str] = []
    for module, tree in _modules():
        if module in MAY_LIST_KINDS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.List | ast.Tuple | ast.Set):
                items: list[ast.expr | None] = list(node.elts)
            elif isinstance(node, ast.Dict):
                items = list(node.keys)
            else:
                continue
            names = {i.value for i in items if isinstance(i, ast.Constant)}
            for family in families:
                if len(names & family) >= 2:
                    found.append(f"{module}:{node.lineno} lists {sorted(names & family)}")
    assert found == []


def _class_names(expr: ast.expr) -> Iterator[str]:
    """The names in `isinstance`'s second argument: `A`, `(A, B)` or `A | B`."""
    if isinstance(expr, ast.Name):
        yield expr.id
    elif isinstance(expr, ast.Tuple):
        for item in expr.elts:
            yield from _class_names(item)
    elif isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        yield from _class_names(expr.left)
        yield from _class_names(expr.right)


def _resolve(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name, None)


def test_no_module_asks_isinstance_of_a_kinds_types_outside_its_own() -> None:
    """Dispatch goes through the kind's hooks, not through the types of its specs, handoffs or
    targets (wherever those are imported from)."""
    kinds = _kind_modules()
    found: list[str] = []
    for module, tree in _modules():
        imported: dict[str, Any] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    imported[alias.asname or alias.name] = _resolve(node.module, alias.name)
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass")
                and len(node.args) == 2
            ):
                continue
            for name in _class_names(node.args[1]):
                home = getattr(imported.get(name), "__module__", None)
                if home in kinds and home != module:
                    found.append(f"{module}:{node.lineno} isinstance of {home}.{name}")
    assert found == []


def test_gathering_the_kinds_imports_no_client_library() -> None:
    """The schema, the parser, `autozero validate` and the registries load every kind's module,
    so each imports its client library when it first calls, never at import."""
    code = (
        "import sys\n"
        "import autozero.policy.parse, autozero.policy.reference, autozero.cli\n"
        "import autozero.sources.registry, autozero.targets.registry, autozero.tenancy\n"
        "clients = ('redis', 'requests', 'pymongo', 'pika', 'kubernetes', 'urllib3',\n"
        "           'googleapiclient', 'google.auth', 'httplib2', 'kopf')\n"
        "print(sorted(c for c in clients if c in sys.modules))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert answer.stdout.strip() == "[]"
