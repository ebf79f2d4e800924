"""Read YAML manifests from files, directories or stdin, remembering where each document came from.

`autozero validate`, `simulate` and `run` all take policies this way, and all report errors as
`file:doc: path: message`, so a user (or a GitOps CI) can jump to the right document.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autozero.policy.model import KIND, Policy
from autozero.policy.parse import parse_policy


@dataclass(frozen=True, slots=True)
class Document:
    source: str  # file path, or "-" for stdin
    index: int  # 1-based position in a multi-document file
    body: Any

    @property
    def where(self) -> str:
        return f"{self.source}:{self.index}"


class ManifestError(ValueError):
    """A file that cannot be read or is not YAML; names the file (and line, when YAML knows it)."""


def _files(arguments: Sequence[str]) -> Iterator[Path | None]:
    for argument in arguments:
        if argument == "-":
            yield None
            continue
        path = Path(argument)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.exists():
            yield path
        else:
            raise ManifestError(f"{argument}: no such file or directory")


def read_documents(arguments: Sequence[str]) -> list[Document]:
    documents: list[Document] = []
    for path in _files(arguments):
        source = "-" if path is None else str(path)
        try:
            text = sys.stdin.read() if path is None else path.read_text()
        except OSError as exc:
            raise ManifestError(f"{source}: {exc.strerror}") from exc
        try:
            bodies = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ManifestError(f"{source}{line}: not valid YAML: {exc}") from exc
        documents.extend(
            Document(source, n, body) for n, body in enumerate(bodies, start=1) if body is not None
        )
    return documents


def is_policy(document: Document) -> bool:
    return isinstance(document.body, dict) and document.body.get("kind") == KIND


def load_policy(path: str) -> Policy:
    """The one ScalingPolicy in `path` (PolicyInvalid or ManifestError if not exactly one)."""
    policies = [d for d in read_documents([path]) if is_policy(d)]
    if len(policies) != 1:
        raise ManifestError(f"{path}: expected exactly one ScalingPolicy, found {len(policies)}")
    return parse_policy(policies[0].body)
