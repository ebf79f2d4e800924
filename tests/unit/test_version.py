"""One version, written once (autozero/__init__.py), said alike everywhere a user sees it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from autozero import __version__
from autozero.cli import main
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

# SemVer 2.0 (what Helm requires of a chart's `version`), from semver.org's own pattern.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def test_the_version_is_a_normalized_pep440_version() -> None:
    assert str(Version(__version__)) == __version__


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "the version is written in autozero/__init__.py"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "autozero.__version__"}


def test_version_flag_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"autozero {__version__}\n"


def test_the_charts_app_version_is_it_and_its_version_the_same_release_in_semver() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "autozero" / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__  # also the image tag the chart pulls by default
    assert SEMVER.match(chart["version"]), f"Helm needs SemVer, not {chart['version']!r}"
    assert Version(chart["version"]) == Version(__version__)


def test_the_changelogs_top_entry_is_it() -> None:
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings, "CHANGELOG.md has no release heading"
    assert headings[0] == __version__


def test_the_readme_says_it() -> None:
    readme = (ROOT / "README.md").read_text()
    status = re.search(r"^> Status: (\S+?),", readme, re.M)
    assert status is not None, "README.md has no '> Status: VERSION,' line"
    assert status.group(1) == __version__
    tags = re.findall(r"autozero:([\w.-]+)|image\.tag=([\w.-]+)", readme)
    assert tags, "the quickstart builds and installs a tagged image"
    assert {a or b for a, b in tags} == {__version__}


def test_the_dockerfiles_build_line_tags_it() -> None:
    first = (ROOT / "Dockerfile").read_text().splitlines()[0]
    assert f"autozero:{__version__} " in first
