"""Finding the Kubernetes credentials for `autozero run` and `autozero operator`, with one clear
error (`KubeconfigError`) naming the file and what to do, whatever is wrong with it.

The kubernetes client's loader fails in many ways on a bad file (ConfigException, TypeError on a
YAML list, UnicodeDecodeError on a binary file...); the file is checked here first so each of
those is said plainly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

DEFAULT = Path("~/.kube/config")
FIX = "pass --kubeconfig FILE or set $KUBECONFIG"


class KubeconfigError(Exception):
    """No usable Kubernetes configuration; the message says which file and what to do."""


def _named() -> list[tuple[str, Path]]:
    """The files the client would read without --kubeconfig, and how each was named."""
    listed = os.environ.get("KUBECONFIG", "")
    if listed:
        return [("$KUBECONFIG's", Path(p)) for p in listed.split(os.pathsep) if p]
    return [("the default kubeconfig", DEFAULT.expanduser())]


def _check(path: Path, named: str) -> None:
    """KubeconfigError unless `path` is a readable YAML mapping (what every kubeconfig is)."""
    if not path.exists():
        raise KubeconfigError(f"{named} {path} does not exist; {FIX}")
    if not path.is_file():
        raise KubeconfigError(f"{named} {path} is not a file; {FIX}")
    try:
        body = yaml.safe_load(path.read_bytes().decode())
    except OSError as exc:
        raise KubeconfigError(f"{named} {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise KubeconfigError(f"{named} {path} is not text (UTF-8 YAML)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1}: {getattr(exc, 'problem', '')})" if mark else ""
        raise KubeconfigError(f"{named} {path} is not valid YAML{line}") from None
    if not isinstance(body, dict):
        raise KubeconfigError(
            f"{named} {path} is not a kubeconfig (a YAML mapping with clusters, "
            "users, contexts and current-context)"
        )


def _files(path: Path | None) -> str | None:
    """The file to load (None: the client's default lookup), each one checked first."""
    if path is not None:
        _check(path, "--kubeconfig")
        return str(path)
    named = _named()
    present = [(how, p) for how, p in named if p.exists()]
    if not present:
        where = ", ".join(f"{how} {p}" for how, p in named)
        raise KubeconfigError(f"no kubeconfig found ({where} does not exist); {FIX}")
    for how, found in present:
        _check(found, how)
    return None


def _loaded(path: Path | None, load: Callable[[str | None], Any]) -> Any:
    from kubernetes.config import ConfigException

    config_file = _files(path)
    try:
        return load(config_file)
    except (ConfigException, OSError) as exc:
        where = config_file or ", ".join(str(p) for _, p in _named())
        raise KubeconfigError(f"kubeconfig {where}: {exc}; fix it or {FIX}") from None


def user_agent(replica: str | None = None) -> str:
    """What autozero calls itself to the apiserver, so that its writes are told apart in the
    audit log (and a sharded replica's from the others')."""
    from autozero import __version__

    return f"autozero/{__version__}" + (f" (replica {replica})" if replica else "")


def api_client(path: Path | None) -> Any:
    """A new `kubernetes.client.ApiClient` from `path`, else $KUBECONFIG or ~/.kube/config."""
    from kubernetes import config

    def load(config_file: str | None) -> Any:
        api = config.new_client_from_config(config_file=config_file)  # type: ignore[no-untyped-call]
        api.user_agent = user_agent()
        return api

    return _loaded(path, load)


def configure_default(path: str | Path | None) -> None:
    """Set the client's default configuration (the operator's): `path`, else the in-cluster
    ServiceAccount, else $KUBECONFIG or ~/.kube/config."""
    from kubernetes import config

    def load(config_file: str | None) -> None:
        config.load_kube_config(config_file=config_file)  # type: ignore[no-untyped-call]

    if path is not None:
        _loaded(Path(path), load)
        return
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return
    except config.ConfigException as exc:
        in_cluster = str(exc).rstrip(".")
    try:
        _loaded(None, load)
    except KubeconfigError as exc:
        raise KubeconfigError(f"not in a cluster ({in_cluster}), and {exc}") from None


def size_the_pool(threads: int) -> None:
    """Let the default client keep a connection per worker thread (and a few for the informers):
    the client's default pool holds 5 per CPU, so on 2 CPUs 16 threads overflowed it, and every
    overflowing call paid a new TLS connection, dropped after use ("Connection pool is full,
    discarding connection", a steady churn in the soak's sockets and CPU)."""
    from kubernetes import client

    configuration = client.Configuration.get_default_copy()
    wanted = threads + 4
    if (configuration.connection_pool_maxsize or 0) < wanted:
        configuration.connection_pool_maxsize = wanted
        client.Configuration.set_default(configuration)
