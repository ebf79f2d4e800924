"""Read YAML manifests from files, directories or stdin, remembering where each node came from.

`autozero validate`, `simulate` and `run` all take policies this way. Reading never stops at a
bad file: each file gets its own result (its documents, or what made it unreadable), so one
template or binary file in a GitOps directory cannot hide the verdict on every other file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autozero.policy.errors import FieldError, PolicyInvalid
from autozero.policy.identity import looks_like_policy
from autozero.policy.model import Policy
from autozero.policy.parse import parse_policy
from autozero.yamldoc import DuplicateKey, Location, YAMLSyntaxError, parse

_LAST_STEP = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")


@dataclass(frozen=True, slots=True)
class Document:
    source: str  # file path, or "-" for stdin
    index: int  # 1-based position in a multi-document file
    body: Any
    start: Location = field(default_factory=lambda: Location(1, 1))
    locations: dict[str, Location] = field(default_factory=dict)
    duplicates: tuple[DuplicateKey, ...] = ()

    def locate(self, path: str) -> Location:
        """Where `path` was written; for a field that is not there (a missing one), its
        nearest written parent; for the whole document, its first line."""
        while path and path != "(root)":
            if path in self.locations:
                return self.locations[path]
            trimmed = _LAST_STEP.sub("", path)
            if trimmed == path:
                break
            path = trimmed
        return self.start


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file that cannot be read, or whose text stops being YAML at `location`."""

    message: str
    location: Location | None = None
    index: int | None = None  # the document in which reading stopped, if it started


@dataclass(frozen=True, slots=True)
class SourceFile:
    source: str
    documents: tuple[Document, ...]  # every non-empty document read (before any problem)
    problem: FileProblem | None = None


class ManifestError(ValueError):
    """A file that cannot be read or is not YAML; names the file (and line, when YAML knows it)."""


def _files(arguments: Sequence[str]) -> Iterator[tuple[str, Path | None]]:
    """(source name, path) per file; None for stdin; a missing path is still given (and fails
    as its own file), so the rest are still read."""
    for argument in arguments:
        if argument == "-":
            yield "-", None
            continue
        path = Path(argument)
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")):
                if found.is_file():
                    yield str(found), found
        else:
            yield argument, path


def _read_bytes(path: Path | None) -> bytes:
    if path is None:
        stream = getattr(sys.stdin, "buffer", None)
        return stream.read() if stream is not None else sys.stdin.read().encode()
    return path.read_bytes()


def read_file(source: str, path: Path | None) -> SourceFile:
    try:
        data = _read_bytes(path)
    except FileNotFoundError:
        return SourceFile(source, (), FileProblem("no such file or directory"))
    except OSError as exc:
        return SourceFile(source, (), FileProblem(f"cannot read: {exc.strerror}"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        return SourceFile(
            source,
            (),
            FileProblem(f"not UTF-8 text (byte {bad:#04x} at offset {exc.start}): not a manifest"),
        )
    documents: list[Document] = []
    problem = None
    try:
        for parsed in parse(text):
            if parsed.body is not None:
                documents.append(
                    Document(
                        source,
                        parsed.index,
                        parsed.body,
                        parsed.start,
                        parsed.locations,
                        parsed.duplicates,
                    )
                )
    except YAMLSyntaxError as exc:
        problem = FileProblem(exc.message, exc.location, exc.index)
    return SourceFile(source, tuple(documents), problem)


def read_files(arguments: Sequence[str]) -> list[SourceFile]:
    """Every file named or found in a directory ('-': stdin), each read on its own."""
    return [read_file(source, path) for source, path in _files(arguments)]


def describe(source: str, problem: FileProblem) -> str:
    where = f"{source}:{problem.location}" if problem.location else source
    return f"{where}: {problem.message}"


def read_documents(arguments: Sequence[str]) -> list[Document]:
    """Every document of every file; ManifestError at the first file that cannot be read."""
    documents: list[Document] = []
    for file in read_files(arguments):
        if file.problem is not None:
            raise ManifestError(describe(file.source, file.problem))
        documents.extend(file.documents)
    return documents


def is_policy(document: Document) -> bool:
    """A ScalingPolicy, or a document meant to be one with a typo in its kind or apiVersion."""
    return looks_like_policy(document.body)


def duplicate_key_errors(document: Document) -> list[FieldError]:
    """Keys written twice in one mapping: kubectl keeps the last one silently (it turns YAML
    into JSON itself); the apiserver's strict decoding of YAML refuses them."""
    return [
        FieldError(
            duplicate.path,
            f"repeated key (first on line {duplicate.first.line}): kubectl would keep only the "
            "last value without a word, the apiserver's strict decoding refuses it",
        )
        for duplicate in document.duplicates
    ]


def check_policy(document: Document) -> Policy:
    """The document's policy, or PolicyInvalid with every error, repeated keys included."""
    duplicates = duplicate_key_errors(document)
    try:
        policy = parse_policy(document.body)
    except PolicyInvalid as exc:
        raise PolicyInvalid([*duplicates, *exc.errors]) from exc
    if duplicates:
        raise PolicyInvalid(duplicates)
    return policy


def load_policy(path: str) -> Policy:
    """The one ScalingPolicy in `path` (PolicyInvalid or ManifestError if not exactly one)."""
    return load_manifest(path)[1]


def load_manifest(path: str) -> tuple[dict[str, Any], Policy]:
    """The one ScalingPolicy in `path`, as its manifest and as the checked policy."""
    policies = [d for d in read_documents([path]) if is_policy(d)]
    if len(policies) != 1:
        raise ManifestError(f"{path}: expected exactly one ScalingPolicy, found {len(policies)}")
    return dict(policies[0].body), check_policy(policies[0])
