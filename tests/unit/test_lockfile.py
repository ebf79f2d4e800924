"""The lock files: made from pyproject.toml as it is now, complete, hashed, and what CI runs.

The image installs requirements.lock and CI requirements-dev.lock (which includes it), so the
versions a user's image runs are the versions the tests ran. Run scripts/lock.sh when a test here
says the locks are stale.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from testground.lockfile import (
    DEV_LOCK,
    RUNTIME_LOCK,
    Pin,
    canonical,
    inputs_digest,
    parse_lock,
    recorded_digest,
)

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = parse_lock(ROOT / RUNTIME_LOCK)
DEV = parse_lock(ROOT / DEV_LOCK)
EVERYTHING = {**RUNTIME, **DEV}


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK])
def test_the_lock_was_made_from_pyprojects_current_dependencies(lock: str) -> None:
    assert recorded_digest(ROOT / lock) == inputs_digest(), (
        f"pyproject.toml's dependencies changed since {lock} was made: run scripts/lock.sh"
    )


def test_the_digest_changes_with_a_dependency_range(tmp_path: Path) -> None:
    changed = tmp_path / "pyproject.toml"
    text = (ROOT / "pyproject.toml").read_text()
    changed.write_text(text.replace('"kopf>=1.38"', '"kopf>=1.39"'))
    assert changed.read_text() != text
    assert inputs_digest(changed) != inputs_digest()


def test_the_dev_lock_takes_the_runtime_pins_from_the_runtime_lock() -> None:
    assert f"-r {RUNTIME_LOCK}" in (ROOT / DEV_LOCK).read_text().splitlines()
    assert not set(RUNTIME) & set(DEV), "a runtime package is pinned twice"


def _requirements(extra: str | None) -> list[Requirement]:
    specs = PYPROJECT["project"]["dependencies"] if extra is None else (
        PYPROJECT["project"]["optional-dependencies"][extra]
    )  # fmt: skip
    return [Requirement(spec) for spec in specs]


@pytest.mark.parametrize(
    ("requirements", "pins"),
    [
        pytest.param(_requirements(None), RUNTIME, id="runtime-in-requirements.lock"),
        pytest.param(_requirements("dev"), EVERYTHING, id="dev-in-requirements-dev.lock"),
        # The image builds autozero with the locked setuptools (pip --no-build-isolation).
        pytest.param(
            [Requirement(r) for r in PYPROJECT["build-system"]["requires"]],
            RUNTIME,
            id="build-system-in-requirements.lock",
        ),
    ],
)
def test_every_requirement_is_pinned_within_its_range(
    requirements: list[Requirement], pins: dict[str, Pin]
) -> None:
    assert requirements
    for requirement in requirements:
        pin = pins.get(canonical(requirement.name))
        assert pin is not None, f"{requirement.name} is not in the lock: run scripts/lock.sh"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{requirement.name}=={pin.version} is outside {requirement.specifier}"
        )


def test_every_pin_has_hashes() -> None:
    assert EVERYTHING
    unhashed = [pin.name for pin in EVERYTHING.values() if not pin.hashes]
    assert unhashed == []


def test_this_environment_runs_exactly_the_locked_versions() -> None:
    """`make setup` installs from the lock: CI tests the versions the image gets."""
    environment = default_environment()
    wrong = {}
    for pin in EVERYTHING.values():
        if pin.marker and not Requirement(f"x; {pin.marker}").marker.evaluate(environment):  # type: ignore[union-attr]
            continue
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != pin.version:
            wrong[pin.name] = f"{installed} installed, {pin.version} locked"
    assert wrong == {}, "run `make setup`, which installs from the lock"
