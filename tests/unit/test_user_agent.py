"""autozero names itself to the apiserver, so that an audit log tells its writes apart from a
person's or a controller's, and a sharded replica's from the others'."""

from __future__ import annotations

from pathlib import Path

import yaml
from autozero import __version__
from autozero.kubeconfig import api_client, user_agent


def test_the_clients_autozero_builds_name_autozero_and_its_version(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    api = api_client(kubeconfig)
    try:
        assert api.user_agent == f"autozero/{__version__}"
    finally:
        api.close()
    assert user_agent("op-1") == f"autozero/{__version__} (replica op-1)"
