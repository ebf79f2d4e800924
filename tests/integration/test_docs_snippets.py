"""Every shell block of the README and docs/ that a reader may run, runs (CONTRIBUTING.md).

A fenced block in a shell language (sh, bash, shell, console) runs unless its info string says
`illustrative` (it needs a real cluster, registry or cloud project). It runs in bash with
`set -euo pipefail`, in a fresh directory holding a copy of examples/ (as if from the repository's
root), with HOME there too and autozero's venv first on PATH. A ```` ```text output ```` block
right after it is its expected standard output; a `...` stands for any text (a whole line of it:
any lines). The servers a block starts itself (the GCE emulator on 8090, Redis on 6390) get free
ports instead, so that runs in parallel do not collide; its background jobs are stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from testground.process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"sh", "bash", "shell", "console"}
PORTS = (8090, 6390)  # the emulator's and Redis's in the docs; replaced with free ones here
FENCE = re.compile(r"^( {0,3})(`{3,})(.*)$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    info: str
    text: str
    output: str | None = None  # the ```text output block that follows, if any

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        words = self.info.split()
        return bool(words) and words[0] in SHELLS and "illustrative" not in words


def fenced_blocks(doc: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each with the `text output` block right after it."""
    lines = doc.read_text().splitlines()
    found: list[tuple[int, str, str, int]] = []  # opening line, info, text, closing line
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, ticks, info = opening.groups()
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(ticks):
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        assert end < len(lines), f"{doc}:{index + 1}: the block is never closed"
        found.append((index + 1, info.strip(), "\n".join(body) + "\n", end + 1))
        index = end + 1
    blocks: list[Block] = []
    for position, (line, info, text, closing) in enumerate(found):
        if info == "text output":
            continue
        output = None
        if position + 1 < len(found):
            next_line, next_info, next_text, _ = found[position + 1]
            between = lines[closing : next_line - 1]
            if next_info == "text output" and not any(s.strip() for s in between):
                output = next_text
        blocks.append(Block(doc, line, info, text, output))
    return blocks


BLOCKS = [block for doc in DOCS for block in fenced_blocks(doc)]
RUNNABLE = [block for block in BLOCKS if block.runs]


def test_every_output_block_follows_a_block_that_runs() -> None:
    for doc in DOCS:
        outputs = doc.read_text().count("```text output")
        checked = sum(1 for b in fenced_blocks(doc) if b.output is not None and b.runs)
        assert outputs == checked, f"{doc.name}: a `text output` block must follow a runnable one"


def test_the_docs_have_runnable_blocks() -> None:
    """The README, the GCE page and the simulate page each show commands that really run."""
    docs = {block.doc.name for block in RUNNABLE}
    assert {"README.md", "gce.md", "simulate.md"} <= docs


def matches(expected: str, actual: str) -> bool:
    """`actual` is `expected`, where a line `...` is any lines and `...` in a line any text."""
    pattern = "".join(
        r"(?:.*\n)*?" if line == "..." else ".*?".join(map(re.escape, line.split("..."))) + r"\n"
        for line in expected.splitlines()
    )
    return re.fullmatch(pattern, actual) is not None


def test_the_ellipsis_matches_what_it_should() -> None:
    assert matches("a\n...\nd\n", "a\nb\nc\nd\n")
    assert matches("at ...Z wake\n", "at 2026-01-01T00:00:00Z wake\n")
    assert not matches("a\nd\n", "a\nb\nd\n")
    assert not matches("at ...Z wake\n", "at noon wake\n")


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_the_block_runs(block: Block, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    script = block.text
    for port in PORTS:
        script = re.sub(rf"\b{port}\b", str(free_port()), script)
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    out_path, err_path = tmp_path / ".stdout", tmp_path / ".stderr"
    with out_path.open("w") as stdout, err_path.open("w") as stderr:
        process = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-c", "set -euo pipefail\n" + script],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: the servers it starts end with it
        )
        try:
            process.wait(timeout=180)
        finally:
            # No such group: the block stopped everything it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    out, err = out_path.read_text(), err_path.read_text()
    assert process.returncode == 0, f"{block.id} failed:\n{out}\n{err}"
    if block.output is not None:
        assert matches(block.output, out), f"{block.id} printed:\n{out}"
