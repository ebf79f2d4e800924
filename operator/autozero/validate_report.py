"""`autozero validate`: a verdict for every file and every document, and every mistake in each.

One result per document (and one per file that cannot be read as YAML), so a GitOps check sees
all that is wrong in one run: a template or a binary file is an error for that file only, a
near-miss of a ScalingPolicy is checked rather than skipped, and every error says the file, the
line and column of the node, the document, the field's path and what is wrong with it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from autozero.manifests import (
    Document,
    SourceFile,
    duplicate_key_errors,
    is_policy,
    read_files,
)
from autozero.policy.errors import PolicyInvalid
from autozero.policy.parse import parse_policy
from autozero.yamldoc import Location

#: Exit statuses, as `autozero validate --help` documents them.
EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2  # argparse's own

Result = Literal["valid", "invalid", "skipped", "unreadable"]


@dataclass(frozen=True, slots=True)
class Finding:
    path: str | None  # the field's path; None for what concerns the whole file or document
    message: str
    location: Location | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "message": self.message,
            "line": self.location.line if self.location else None,
            "column": self.location.column if self.location else None,
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """The verdict on one document, or on a file (or its rest) that could not be read."""

    source: str
    index: int | None  # the document, 1-based; None for a file not read at all
    location: Location | None  # where the document (or the unreadable part) starts
    kind: str | None
    name: str | None
    result: Result
    findings: tuple[Finding, ...] = ()

    @property
    def failed(self) -> bool:
        return self.result in ("invalid", "unreadable")

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "document": self.index,
            "line": self.location.line if self.location else None,
            "kind": self.kind,
            "name": self.name,
            "result": self.result,
            "valid": not self.failed,
            "errors": [finding.to_json() for finding in self.findings],
        }


_FOUND = {str: "text", list: "a list", int: "a number", float: "a number", bool: "true/false"}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _document_entry(document: Document) -> Entry:
    body = document.body
    if not isinstance(body, dict):
        what = _FOUND.get(type(body), "something else")
        finding = Finding(
            None,
            f"not a Kubernetes manifest: expected a mapping with apiVersion and kind, found {what}",
            document.start,
        )
        return Entry(
            document.source, document.index, document.start, None, None, "unreadable", (finding,)
        )
    kind = _text(body.get("kind"))
    metadata = body.get("metadata")
    name = _text(metadata.get("name")) if isinstance(metadata, dict) else None
    if not is_policy(document):
        return Entry(document.source, document.index, document.start, kind, name, "skipped")
    # A repeated key is pointed at where it is written again.
    errors = duplicate_key_errors(document)
    findings = [
        Finding(e.path, e.message, d.again)
        for e, d in zip(errors, document.duplicates, strict=True)
    ]
    try:
        parse_policy(body)
    except PolicyInvalid as exc:
        findings += [Finding(e.path, e.message, document.locate(e.path)) for e in exc.errors]
    if not findings:
        return Entry(document.source, document.index, document.start, kind, name, "valid")
    findings.sort(key=lambda f: (f.location.line, f.location.column) if f.location else (0, 0))
    return Entry(
        document.source, document.index, document.start, kind, name, "invalid", tuple(findings)
    )


def _file_entries(file: SourceFile) -> list[Entry]:
    entries = [_document_entry(document) for document in file.documents]
    if file.problem is not None:
        problem = file.problem
        finding = Finding(None, problem.message, problem.location)
        entries.append(
            Entry(
                file.source, problem.index, problem.location, None, None, "unreadable", (finding,)
            )
        )
    elif not entries:
        entries.append(Entry(file.source, None, None, None, None, "skipped"))
    return entries


def check_files(arguments: Sequence[str]) -> list[Entry]:
    """A verdict on every document of every file named or found in a directory."""
    return [entry for file in read_files(arguments) for entry in _file_entries(file)]


def exit_status(entries: Sequence[Entry]) -> int:
    policies = [e for e in entries if e.result in ("valid", "invalid")]
    if not policies or any(e.failed for e in entries):
        return EXIT_INVALID
    return EXIT_VALID


def _plural(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _line(entry: Entry, finding: Finding) -> str:
    where = entry.source + (f":{finding.location}" if finding.location else "")
    document = f"[doc {entry.index}] " if entry.index is not None else ""
    what = f"{finding.path}: {finding.message}" if finding.path else finding.message
    return f"{where}: {document}{what}"


def write_text(entries: Sequence[Entry], arguments: Sequence[str], out: TextIO) -> None:
    """`file:line:column: [doc N] path: message` per error, in file order, then a summary."""
    for entry in entries:
        for finding in entry.findings:
            out.write(_line(entry, finding) + "\n")
    policies = [e for e in entries if e.result in ("valid", "invalid")]
    if policies:
        valid = sum(1 for e in policies if e.result == "valid")
        out.write(f"{valid}/{len(policies)} ScalingPolicy documents valid\n")
    else:
        out.write(f"no ScalingPolicy found in {', '.join(arguments)}\n")
    unreadable = sorted({e.source for e in entries if e.result == "unreadable"})
    if unreadable:
        files = _plural(len(unreadable), "file")
        out.write(f"{files} not readable as manifests: {', '.join(unreadable)}\n")
    skipped = Counter(
        e.kind or "(no kind)" for e in entries if e.result == "skipped" and e.index is not None
    )
    if skipped:
        kinds = ", ".join(f"{kind} ({count})" for kind, count in sorted(skipped.items()))
        documents = _plural(sum(skipped.values()), "document")
        out.write(f"skipped {documents} of other kinds: {kinds}\n")
    empty = [e.source for e in entries if e.result == "skipped" and e.index is None]
    if empty:
        out.write(f"skipped {_plural(len(empty), 'empty file')}: {', '.join(empty)}\n")


def write_json(entries: Sequence[Entry], out: TextIO) -> None:
    out.write(json.dumps([entry.to_json() for entry in entries], indent=2) + "\n")


def run(arguments: Sequence[str], output: str, out: TextIO) -> int:
    entries = check_files(arguments)
    if output == "json":
        write_json(entries, out)
    else:
        write_text(entries, arguments, out)
    return exit_status(entries)
