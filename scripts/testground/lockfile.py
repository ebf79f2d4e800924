"""The lock files: every package the image and CI install, pinned, with hashes, from one source.

`requirements.lock` holds autozero's runtime dependencies (and the setuptools that builds it): the
image installs exactly it. `requirements-dev.lock` starts with `-r requirements.lock` and adds the
dev tools, so CI's runtime versions are the image's, read from the same lines. Both are produced by
uv (`uv pip compile`) from pyproject.toml's ranges; each records the sha256 of those ranges, so a
test can tell when pyproject.toml changed and the locks were not made again.

Run `scripts/lock.sh` after changing a dependency in pyproject.toml.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = "requirements.lock"
DEV_LOCK = "requirements-dev.lock"
PYTHON_VERSION = "3.11"  # the oldest Python autozero supports (requires-python)
DIGEST_PREFIX = "# pyproject.toml's dependencies, sha256: "
#: Written beside pyproject.toml while uv runs, so its `# via` comments name a stable path.
BUILD_INPUT = "build-system.in"


class LockError(RuntimeError):
    """The locks could not be made; the message carries uv's own output."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    marker: str  # "" when the pin applies everywhere
    hashes: tuple[str, ...]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def inputs_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """sha256 of what the locks are made from: the ranges, the extras, requires-python and the
    build system's requirements (not the rest of pyproject.toml)."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    inputs = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python", ""),
        "build-system": data.get("build-system", {}).get("requires", []),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).strip()
    return None


def parse_lock(lock: Path) -> dict[str, Pin]:
    """The pins of one lock file (not those of the files it includes with -r)."""
    pins: dict[str, Pin] = {}
    for block in re.split(r"\n(?=\S)", lock.read_text()):
        head = block.split("\n", 1)[0].rstrip(" \\")
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;]+)\s*(?:;\s*(.+))?$", head)
        if not match:
            continue
        name = canonical(match.group(1))
        pins[name] = Pin(
            name=name,
            version=match.group(2),
            marker=(match.group(3) or "").strip(),
            hashes=tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", block)),
        )
    return pins


def _compile(args: list[str], uv: Path) -> None:
    proc = subprocess.run(
        [str(uv), "pip", "compile", "--quiet", "--universal", "--generate-hashes",
         f"--python-version={PYTHON_VERSION}", "--custom-compile-command=scripts/lock.sh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise LockError(f"uv pip compile {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def _stamp(lock: Path, digest: str, include: str | None = None) -> None:
    """Put the inputs' digest (and the -r line) under uv's header comment."""
    lines = lock.read_text().splitlines()
    body_start = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    extra = [DIGEST_PREFIX + digest]
    if include:
        extra.append(f"-r {include}")
    lock.write_text("\n".join(lines[:body_start] + extra + lines[body_start:]) + "\n")


def make_locks(uv: Path, *, upgrade: bool = False) -> None:
    """Write both lock files. Without `upgrade`, uv keeps every pin that still fits."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build_input = ROOT / BUILD_INPUT
    build_input.write_text("\n".join(data["build-system"]["requires"]) + "\n")
    digest = inputs_digest()
    flags = ["--upgrade"] if upgrade else []
    try:
        _compile([*flags, "pyproject.toml", BUILD_INPUT, f"--output-file={RUNTIME_LOCK}"], uv)
        _stamp(ROOT / RUNTIME_LOCK, digest)
        # The dev tools, with every runtime package held at the runtime lock's pin.
        _compile(
            [*flags, "pyproject.toml", BUILD_INPUT, "--extra=dev",
             f"--constraint={RUNTIME_LOCK}", f"--output-file={DEV_LOCK}"],
            uv,
        )  # fmt: skip
    finally:
        build_input.unlink(missing_ok=True)
    runtime = parse_lock(ROOT / RUNTIME_LOCK)
    _drop(ROOT / DEV_LOCK, set(runtime))
    _stamp(ROOT / DEV_LOCK, digest, include=RUNTIME_LOCK)


def _drop(lock: Path, names: set[str]) -> None:
    """Remove the entries of `names` from `lock` (they come from the runtime lock's lines)."""
    kept = []
    for block in re.split(r"\n(?=\S)", lock.read_text()):
        match = re.match(r"([A-Za-z0-9_.-]+)==", block)
        if match and canonical(match.group(1)) in names:
            continue
        kept.append(block.rstrip("\n"))
    lock.write_text("\n".join(kept) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    uv = ROOT / ".venv" / "bin" / "uv"
    try:
        make_locks(uv, upgrade="--upgrade" in args)
    except LockError as exc:
        print(f"[lock] {exc}", file=sys.stderr)
        return 1
    for name in (RUNTIME_LOCK, DEV_LOCK):
        print(f"[lock] {name}: {len(parse_lock(ROOT / name))} pins", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
