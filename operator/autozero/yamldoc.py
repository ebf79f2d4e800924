"""YAML text -> documents that remember where each node was written, and which keys repeat.

A policy error is only useful if it points at the line to fix: each document keeps the line and
column of every node, by the same path the validator reports (`spec.groups[0].name`). Keys that
appear twice in one mapping are collected too: the apiserver's strict decoding refuses them,
while a plain YAML load keeps the last one and hides the mistake.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"
#: Enough for any real manifest; a document whose aliases expand beyond it (a "billion laughs")
#: is refused rather than expanded.
MAX_NODES = 100_000


@dataclass(frozen=True, slots=True)
class Location:
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"

    @classmethod
    def of(cls, mark: yaml.Mark) -> Location:
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    path: str  # the repeated key's path
    first: Location  # where it was first written
    again: Location  # where it is written again


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    index: int  # 1-based position in the file, empty documents counted
    body: Any
    start: Location
    locations: dict[str, Location] = field(default_factory=dict)
    duplicates: tuple[DuplicateKey, ...] = ()


class YAMLSyntaxError(ValueError):
    """Text that is not YAML from some point on; says where, in words a user can act on."""

    def __init__(self, message: str, location: Location | None, index: int) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.index = index  # the document in which reading stopped


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as the strings written, as Kubernetes' decoder does: an
    unquoted `start: 2026-11-27T08:00:00` is the string the CRD asks for, not a datetime."""


def _timestamp_as_text(loader: _Loader, node: Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def join(path: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else step


def _key(node: Node) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def _children(node: Node, path: str) -> Iterator[tuple[str, Node, Node]]:
    """(child path, node that names it, child node), in the order written."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            name = _key(key)
            if name is not None and key.tag != MERGE_TAG:
                yield join(path, name), key, value
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield join(path, index), item, item


def _walk(root: Node) -> Iterator[tuple[str, Node, Node]]:
    """Every node below `root` with its path, depth first; alias cycles and blow-ups cut."""
    stack: list[tuple[str, Node, frozenset[int]]] = [("", root, frozenset({id(root)}))]
    seen = 0
    while stack and seen < MAX_NODES:
        path, node, ancestors = stack.pop()
        children = list(_children(node, path))
        for child_path, name, child in children:
            seen += 1
            yield child_path, name, child
        for child_path, _, child in reversed(children):
            if id(child) not in ancestors and isinstance(child, MappingNode | SequenceNode):
                stack.append((child_path, child, ancestors | {id(child)}))


def _duplicates(root: Node) -> tuple[DuplicateKey, ...]:
    found: list[DuplicateKey] = []
    mappings = [("", root)] + [(p, c) for p, _, c in _walk(root) if isinstance(c, MappingNode)]
    for path, mapping in mappings:
        if not isinstance(mapping, MappingNode):
            continue
        first: dict[tuple[str, str], Location] = {}
        for key, _ in mapping.value:
            name = _key(key)
            if name is None or key.tag == MERGE_TAG:
                continue
            where = Location.of(key.start_mark)
            if (key.tag, name) in first:
                found.append(DuplicateKey(join(path, name), first[(key.tag, name)], where))
            else:
                first[(key.tag, name)] = where
    return tuple(found)


def _locations(root: Node) -> dict[str, Location]:
    """Each path's position: where a field's name is written (for a list item, the item). A
    repeated key: its last writing, whose value is the one kept."""
    return {path: Location.of(name.start_mark) for path, name, _ in _walk(root)}


def _syntax_error(exc: yaml.YAMLError, text: str, index: int) -> YAMLSyntaxError:
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        before = text[: exc.position]
        where = Location(before.count("\n") + 1, len(before) - before.rfind("\n"))
        return YAMLSyntaxError(
            f"not a text file: it holds the control character {ord(character):#04x}", where, index
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return YAMLSyntaxError(f"not valid YAML: {exc}", None, index)
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "unexpected text"
    if exc.context and exc.context_mark and exc.context_mark.line != getattr(mark, "line", -1):
        problem += f" ({exc.context} started on line {exc.context_mark.line + 1})"
    message = f"not valid YAML: {problem}"
    if "{{" in text:
        message += " (this looks like a template: render it first, e.g. with `helm template`)"
    return YAMLSyntaxError(message, Location.of(mark) if mark else None, index)


def parse(text: str) -> Iterator[ParsedDocument]:
    """Every document of `text`, then YAMLSyntaxError if the text stops being YAML (the
    documents before that point are still given)."""
    try:
        loader = _Loader(text)  # refuses control characters at once
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, 1) from exc
    index = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                if node is None:  # check_node said there is one
                    return
                if sum(1 for _ in _walk(node)) >= MAX_NODES:
                    # Checking it would expand every alias: refused, as kubectl refuses it.
                    raise YAMLSyntaxError(
                        f"not a manifest: its aliases expand to more than {MAX_NODES} nodes",
                        Location.of(node.start_mark),
                        index + 1,
                    )
                # Before constructing: that merges `<<:` keys into the mapping's own.
                duplicates = _duplicates(node)
                # A fresh constructor per document: one that failed keeps half-built state.
                body = _Loader("").construct_document(node)
            except yaml.YAMLError as exc:
                raise _syntax_error(exc, text, index + 1) from exc
            index += 1
            yield ParsedDocument(
                index, body, Location.of(node.start_mark), _locations(node), duplicates
            )
    finally:
        loader.dispose()
