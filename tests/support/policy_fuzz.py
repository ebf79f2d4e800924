"""Seeded mutations of the examples: many ScalingPolicies, most of them malformed, to check that
the apiserver and `autozero validate` judge every one alike.

Each manifest is an example (its `spec`, under a fresh name in `default`) with one to three
mutations drawn from one seed: a value of the wrong type, an enum off by a letter or a case, a
number at or past a bound, a duration in a form the pattern or the CEL rule refuses (or nearly
does), a cross-field rule broken (minimum over maximum, both or neither of a one-of, an undeclared
metric), unicode and control characters, sizes (long strings, long lists), a field removed or
added. `mutants(seed, n)[i]` is the same manifest for the same seed on any machine, so a
disagreement is replayed from `(seed, i)` alone.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

Node = dict[str, Any] | list[Any]
Slot = tuple[Node, str | int]  # a container and the key (or index) of one of its values


@dataclass(frozen=True)
class Mutant:
    index: int
    example: str
    mutations: tuple[str, ...]  # what was done, e.g. "type spec.groups[0].capacity.maximum=str"
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"] if _named(self.manifest) else f"#{self.index}"


def _named(manifest: Any) -> bool:
    metadata = manifest.get("metadata") if isinstance(manifest, dict) else None
    return isinstance(metadata, dict) and isinstance(metadata.get("name"), str)


def examples() -> list[tuple[str, dict[str, Any]]]:
    """Every ScalingPolicy of examples/*.yaml, by file stem."""
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "ScalingPolicy":
                found.append((path.stem, document))
    return found


def _slots(node: Any, path: str = "") -> Iterator[tuple[str, Slot]]:
    """Every value under `spec` with its path, as a slot that can be replaced."""
    items: Iterator[tuple[str | int, Any]]
    if isinstance(node, dict):
        items = iter(list(node.items()))
    elif isinstance(node, list):
        items = iter(list(enumerate(node)))
    else:
        return
    for key, value in items:
        here = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        yield here, (node, key)
        yield from _slots(value, here)


DURATIONS = [
    "0s",
    "0ms",
    "-5s",
    "5",
    "1.5m",
    "1h30m",
    "",
    "10d",
    "1e3s",
    "9999999999h",
    "5 s",
    "5S",
    "0.5s",
    "1m0s",
    "2h",
    "31m",
    "61m",
    "1h1s",
    "100ms",
    "0.0001ms",
    "٣s",
    "5s ",
    "PT5S",
    "1.s",
]
STRINGS = [
    "",
    " ",
    "a",
    "A",
    "UPPER",
    "with space",
    "-leading",
    "trailing-",
    "a..b",
    "x" * 64,
    "x" * 253,
    "x" * 254,
    "é",
    "\uff4a\uff4f\uff42\uff53",  # full-width letters
    "jobs\u200b",
    "\u202ejobs",
    "🙂",
    "a\x00b",
    "a\nb",
    "null",
    "true",
    "1",
    "0x10",
    "${VAR}",
    "*",
    "jobs:*",
    "http://u:p@h/",
    "redis://h:1/0",
    "Mon",
    "mon",
    "Monday",
    "GreaterThan",
    "greaterthan",
    "Increase",
    "Europe/Paris",
    "UTC",
]
NUMBERS: list[Any] = [0, -1, 1, 2, 3.0, 0.5, 1e-9, 100, 1000, 10**6, 2**31, 2**53, 2**63, -(2**63)]
OTHERS: list[Any] = [None, True, False, [], {}, ["x"], {"x": 1}, "1", 1, 1.5]


def _type(rng: random.Random, slot: Slot) -> str:
    node, key = slot
    value = node[key]  # type: ignore[index]
    choices = [v for v in OTHERS if type(v) is not type(value)]
    new = rng.choice(choices)
    node[key] = copy.deepcopy(new)  # type: ignore[index]
    return f"type={type(new).__name__}"


def _string(rng: random.Random, slot: Slot) -> str:
    node, key = slot
    value = node[key]  # type: ignore[index]
    pool = DURATIONS if isinstance(value, str) and value[:1].isdigit() else STRINGS
    if isinstance(value, str) and value and rng.random() < 0.3:
        new = rng.choice([value.upper(), value.lower(), value[:-1], value + "x", value.swapcase()])
    else:
        new = rng.choice(pool + STRINGS[:8])
    node[key] = new  # type: ignore[index]
    return f"string={new[:20]!r}"


def _number(rng: random.Random, slot: Slot) -> str:
    node, key = slot
    value = node[key]  # type: ignore[index]
    if isinstance(value, bool) or not isinstance(value, int | float):
        new: Any = rng.choice(NUMBERS)
    else:
        new = rng.choice([value - 1, value + 1, -value, value * 1000, 0, float(value), value + 0.5])
    node[key] = new  # type: ignore[index]
    return f"number={new!r}"


def _delete(rng: random.Random, slot: Slot) -> str:
    node, key = slot
    del node[key]  # type: ignore[arg-type]
    return "delete"


def _add(rng: random.Random, slot: Slot) -> str:
    node, key = slot
    value = node[key]  # type: ignore[index]
    if isinstance(value, dict):
        name = rng.choice(["extra", "Name", "name ", "min", "maxReplicas", "url", "urlFrom", "é"])
        value[name] = copy.deepcopy(rng.choice([*OTHERS, "redis://r:6379/0"]))
        return f"add {name!r}"
    if isinstance(value, list) and value:
        value.append(copy.deepcopy(rng.choice(value)))  # often a duplicate list-map key
        return "append a copy"
    return _type(rng, slot)


def _grow(rng: random.Random, slot: Slot) -> str:
    node, key = slot
    value = node[key]  # type: ignore[index]
    if isinstance(value, list) and value:
        count = rng.choice([50, 120, 300])
        grown = [copy.deepcopy(value[i % len(value)]) for i in range(count)]
        for i, item in enumerate(grown):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                item["name"] = f"{item['name'][:40]}-{i}"
        node[key] = grown  # type: ignore[index]
        return f"grow to {count}"
    if isinstance(value, str):
        node[key] = value + "x" * rng.choice([64, 253, 1000, 20000])  # type: ignore[index]
        return "long string"
    return _number(rng, slot)


Mutation = Callable[[random.Random, Slot], str]
BY_VALUE: list[tuple[Mutation, float]] = [
    (_type, 3),
    (_string, 4),
    (_number, 3),
    (_delete, 3),
    (_add, 2),
    (_grow, 1),
]


def _pick_slot(rng: random.Random, spec: dict[str, Any]) -> tuple[str, Slot]:
    return rng.choice(list(_slots(spec, "spec")))


def _cross_field(rng: random.Random, manifest: dict[str, Any]) -> str:
    """Break a rule that spans fields: the CEL rules' and validate's own cross-checks."""
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        manifest["spec"] = {}
        return "spec not a mapping: emptied"
    groups = [g for g in _list(spec.get("groups")) if isinstance(g, dict)]
    metrics = [m for m in _list(spec.get("metrics")) if isinstance(m, dict)]
    group = rng.choice(groups) if groups else {}
    capacity = group.get("capacity") if isinstance(group.get("capacity"), dict) else {}
    choice = rng.randrange(9)
    if choice == 0 and capacity:
        capacity["minimum"], capacity["maximum"] = 5, 2
        return "capacity minimum > maximum"
    if choice == 1 and capacity:
        maximum = capacity.get("maximum")
        top = maximum if isinstance(maximum, int) and not isinstance(maximum, bool) else 3
        capacity["default"] = top + rng.choice([1, 100])
        return "capacity default > maximum"
    if choice == 2 and capacity:
        capacity["minimum"] = 0
        group.pop("activation", None)
        return "minimum 0 without activation"
    if choice == 3 and isinstance(group.get("activation"), dict):
        group["activation"]["metric"] = rng.choice(["nope", "Backlog", ""])
        return "activation on an undeclared metric"
    if choice == 4 and metrics:
        metric = rng.choice(metrics)
        for source in metric.values():
            if isinstance(source, dict):
                if "url" in source:
                    source["urlFrom"] = {"secretKeyRef": {"name": "s", "key": "k"}}
                    return "url and urlFrom"
                if "urlFrom" in source:
                    del source["urlFrom"]
                    return "neither url nor urlFrom"
        metric["redis"] = {"url": "redis://r:6379/0", "key": "k"}
        return "two sources"
    if choice == 5 and groups:
        target = group.get("target")
        if isinstance(target, dict):
            target["kubernetes"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}
            target["gce"] = {"project": "p", "zone": "europe-west1-b", "instanceGroupManager": "m"}
            return "two targets"
    if choice == 6 and metrics and len(metrics) >= 1:
        spec["metrics"].append(copy.deepcopy(metrics[0]))
        return "duplicate metric name"
    if choice == 7 and groups:
        spec["groups"].append(copy.deepcopy(groups[0]))
        return "duplicate group name"
    for g in groups:
        for profile in _list(g.get("profiles")):
            for rule in _list(profile.get("rules")) if isinstance(profile, dict) else []:
                if isinstance(rule, dict):
                    rule["metric"] = "undeclared"
                    return "rule on an undeclared metric"
    spec.pop("metrics", None)
    return "no metrics"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _metadata(rng: random.Random, manifest: dict[str, Any]) -> str:
    metadata = manifest["metadata"]
    new: Any = rng.choice(
        [
            "Upper",
            "x" * 254,
            "x" * 63 + ".y",
            "a_b",
            "é",
            "-a",
            "a-",
            "ok.dotted",
            123,
            "",
        ]
    )
    metadata["name"] = new
    return f"metadata.name={str(new)[:20]!r}"


def mutate(rng: random.Random, manifest: dict[str, Any]) -> list[str]:
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        roll = rng.random()
        if roll < 0.2:
            done.append(_cross_field(rng, manifest))
            continue
        if roll < 0.23:
            done.append(_metadata(rng, manifest))
            continue
        spec = manifest.get("spec")
        if not isinstance(spec, dict) or not spec:
            break
        path, slot = _pick_slot(rng, spec)
        functions, weights = zip(*BY_VALUE, strict=True)
        function = rng.choices(functions, weights)[0]
        done.append(f"{function.__name__.lstrip('_')} {path}: {function(rng, slot)}")
    return done


def mutants(seed: int, count: int, namespace: str = "default") -> list[Mutant]:
    """`count` manifests from `seed`: about 1 in 20 unmutated (a valid control), the rest
    mutated once to three times."""
    rng = random.Random(seed)
    bases = examples()
    out = []
    for index in range(count):
        stem, base = bases[rng.randrange(len(bases))]
        manifest = {
            "apiVersion": base["apiVersion"],
            "kind": base["kind"],
            "metadata": {"name": f"fuzz-{seed}-{index}", "namespace": namespace},
            "spec": copy.deepcopy(base["spec"]),
        }
        done = mutate(rng, manifest) if rng.random() >= 0.05 else []
        out.append(Mutant(index, stem, tuple(done), manifest))
    return out


def as_kubectl_sends(value: Any) -> Any:
    """`value` as kubectl puts it in its request: it reads YAML into Go values and writes JSON,
    so a whole float (`1.0`) goes as `1`, as Go writes a float64 below 1e21. Sent as `1.0`, an
    integer field fails the CRD's CEL rules (no overload for int and double); from a YAML file
    through kubectl, which is what `autozero validate` judges, it does not (seed 7, index 257)."""
    if isinstance(value, dict):
        return {k: as_kubectl_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_kubectl_sends(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value
