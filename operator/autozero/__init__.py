"""autozero: scale worker groups to zero when idle and back up the moment work arrives."""

# The one place the version is written: pyproject.toml reads it (setuptools `attr:`), and the
# chart's appVersion, the CHANGELOG's top entry and the README's status line must say the same
# (tests/unit/test_version.py). A PEP 440 development release until 0.1.0 is tagged.
__version__ = "0.1.0.dev0"
