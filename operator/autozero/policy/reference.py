"""docs/policy-reference.md, generated from the CRD schema so the reference cannot drift.

Run `python -m autozero.policy.reference > docs/policy-reference.md`; a test fails when the
committed file differs from what the schema says.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from autozero.policy.fields import POSITIVE_DURATION
from autozero.policy.schema import crd

INTRO = """# ScalingPolicy reference

`ScalingPolicy` (`autozero.dev/v1alpha1`, namespaced, short name `sp`) declares the metrics that
drive a set of worker groups and how each group scales. This page is generated from the CRD's
schema (`operator/autozero/policy/schema.py`): every field, its type, its default and its rules.
`autozero validate -f FILE` applies the same schema and rules offline.

Durations are Go-style strings: `250ms`, `30s`, `5m`, `1h30m`.

## A worked example

A nightly batch (`examples/nightly-batch.yaml`): a zonal managed instance group fed by an MRQ
queue, woken when jobs wait, handed to a GCE autoscaler while awake, and taken back to zero after
30 minutes with nothing pending and nothing running.

```yaml
{example}```

## Fields
"""


def _type(schema: dict[str, Any]) -> str:
    kind = str(schema.get("type", "object"))
    if kind == "array":
        item = schema.get("items", {})
        return f"list of {_type(item)}"
    if "enum" in schema:
        return "enum"
    if schema.get("pattern", "").startswith("^([0-9]+"):
        return "duration"
    return kind


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
        ("maxLength", "length ≤"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    items = schema.get("items", {})
    if "enum" in items:
        parts.append("each one of " + ", ".join(f"`{v}`" for v in items["enum"]))
    if schema.get("x-kubernetes-list-type") == "map":
        parts.append("names unique")
    if "properties" not in schema:  # an object's rules get their own list below it
        for rule in schema.get("x-kubernetes-validations", ()):
            parts.append("> 0s" if rule["rule"] == POSITIVE_DURATION else rule["message"])
    return "; ".join(parts)


def _section(path: str, schema: dict[str, Any], out: list[str]) -> None:
    properties = schema.get("properties")
    if properties is None and schema.get("type") == "array":
        _section(path + "[]", schema.get("items", {}), out)
        return
    if not properties:
        return
    out.append(f"\n### `{path}`\n\n{_cell(schema.get('description', ''))}\n")
    required = set(schema.get("required", ()))
    out.append("| field | type | default | constraints | description |")
    out.append("| --- | --- | --- | --- | --- |")
    for name, sub in properties.items():
        label = f"`{name}`" + (" (required)" if name in required else "")
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else ""
        out.append(
            f"| {label} | {_type(sub)} | {_cell(default)} | {_cell(_constraints(sub))} | "
            f"{_cell(sub.get('description', ''))} |"
        )
    rules = schema.get("x-kubernetes-validations", ())
    if rules:
        out.append("\nRules:\n")
        out.extend(f"- {rule['message']} (`{_cell(rule['rule'])}`)" for rule in rules)
    for name, sub in properties.items():
        _section(f"{path}.{name}", sub, out)


VALIDATE_EXAMPLE = (
    "policies.yaml:25:37: [doc 2] spec.groups[0].activation.idelFor: unknown field "
    "(did you mean idleFor?)\n"
    "policies.yaml:36:15: [doc 2] spec.groups[1].profiles[0].rules[0].metric: 'backlg' is not a "
    "declared metric (declared: backlog, cpu; did you mean backlog?)"
)

BEYOND_THE_SCHEMA = """
## Checked beyond the schema

The apiserver cannot check these; `autozero validate` does, and the operator reports a policy
that fails them with a `Ready=False` condition (reason `InvalidPolicy`) and an Event, and goes on
serving every other policy:

- every `timeZone` is a known IANA zone (`Europe/Paris`, `America/New_York`, `UTC`);
- `fixedDate.start` and `end` are date-times and `end` is after `start`;
- a rule's `timeGrain` is at least `spec.pollingInterval` (every grain needs a sample) and its
  `timeWindow` is a whole number of grains.

## `autozero validate`

`autozero validate -f FILE_OR_DIR [-f ...] [--output json]` checks every file and every document
in one run, and prints each mistake as `FILE:LINE:COLUMN: [doc N] PATH: MESSAGE` (the line and
column of the field; for a missing field, of the mapping that lacks it):

```text
{validate_example}
```

- A file that is not UTF-8 text or not YAML (a Helm template, a binary) is an error for that file
  only; the other files are still checked.
- A document whose kind or apiVersion is a near miss of `ScalingPolicy` / `autozero.dev/v1alpha1`
  (`kind: Scalingpolicy`) is checked, and refused with what was meant. Documents of other kinds
  are skipped and counted in the summary.
- A key written twice in one mapping is an error: kubectl would keep only the last value without
  a word (the apiserver's strict decoding, given the YAML itself, refuses it).
- `--output json` prints one entry per document (and per file that could not be read): `file`,
  `document`, `line`, `kind`, `name`, `result` (`valid`, `invalid`, `skipped`, `unreadable`),
  `valid`, and `errors` (`path`, `message`, `line`, `column`).

Exit status: `0` every ScalingPolicy is valid; `1` a ScalingPolicy is invalid, a file is not
readable as YAML manifests, or no ScalingPolicy was found; `2` a usage error.
"""


def reference(example: str) -> str:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    out = [INTRO.format(example=example)]
    _section("spec", schema, out)
    out.append(BEYOND_THE_SCHEMA.format(validate_example=VALIDATE_EXAMPLE))
    return "\n".join(out)


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    sys.stdout.write(reference((root / "examples" / "nightly-batch.yaml").read_text()))
