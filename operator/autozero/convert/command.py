"""`autozero convert keda -f FILE_OR_DIR...`: ScalingPolicies on stdout, notes on stderr.

Each converted policy is checked with the same schema and rules `autozero validate` applies
before it is printed; every field not carried (or carried with another meaning) is one line on
stderr, `FILE:LINE: ScaledObject NAMESPACE/NAME: FIELD: why`.

Exit status: 0 when every ScaledObject was converted (its notes still say what differs), 1 when
one was not, a file could not be read, or no ScaledObject was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

import yaml

from autozero import exits
from autozero.convert.keda import Source, convert
from autozero.manifests import Document, describe, read_files
from autozero.policy.errors import PolicyInvalid
from autozero.policy.parse import parse_policy


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors and aliases for repeated values (a rule list shared by profiles)."""

    def ignore_aliases(self, _data: Any) -> bool:
        return True


def _locator(document: Document) -> Any:
    def locate(path: str) -> str:
        return f"{document.source}:{document.locate(path).line}"

    return locate


def run(arguments: Sequence[str], prometheus: str | None, out: TextIO, err: TextIO) -> int:
    sources: list[Source] = []
    status = exits.OK
    for file in read_files(arguments):
        if file.problem is not None:
            print(f"autozero: {describe(file.source, file.problem)}", file=err)
            status = exits.BAD_INPUT
        sources.extend(Source(d.body, _locator(d)) for d in file.documents)
    results = convert(sources, prometheus=prometheus)
    if not results:
        print("autozero: no KEDA ScaledObject (keda.sh/v1alpha1) found", file=err)
        return exits.BAD_INPUT
    first = True
    for result in results:
        for note in result.notes:
            print(note, file=err)
        if result.policy is None:
            print(f"autozero: {result.object}: not converted (see above)", file=err)
            status = exits.BAD_INPUT
            continue
        try:
            parse_policy(result.policy)
        except PolicyInvalid as invalid:  # a conversion the schema refuses: never print it
            for error in invalid.errors:
                print(f"autozero: {result.object}: converted policy invalid: {error}", file=err)
            status = exits.BAD_INPUT
            continue
        if not first:
            out.write("---\n")
        first = False
        out.write(f"# Converted by autozero convert keda from {result.object}.\n")
        out.write(yaml.dump(result.policy, Dumper=_Dumper, sort_keys=False, width=100))
    return status
