"""1,100 seeded mutations of the examples (tests/support/policy_fuzz.py): the apiserver and
`autozero validate` agree on accept or reject for every one, and validate never shows a traceback.

The apiserver judges each manifest as `kubectl apply --dry-run=server` with strict field
validation would (one POST each, dryRun=All, from a few threads over one connection pool, the
JSON written as kubectl writes it from YAML: `as_kubectl_sends`); the
installed `autozero validate` judges all of them in one run over one multi-document file, with
`--output json`. What validate refuses beyond the CRD (time zones, dates, grains that do not fit
the polling interval: policy/parse.py's builder) the apiserver accepts by design; so the
schema part of validate (identity and schema, CEL rules included) must match the apiserver
exactly, and the whole of it must refuse whatever the apiserver refuses.
AUTOZERO_FUZZ_SEED=N runs another seed; a disagreement names its seed and index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from autozero.policy.identity import identity_errors
from autozero.policy.validate import schema_errors
from kubernetes import client as k8s
from kubernetes import config
from support.policy_fuzz import Mutant, as_kubectl_sends, mutants
from testground.kube import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
AUTOZERO = Path(sys.executable).with_name("autozero")
SEED = int(os.environ.get("AUTOZERO_FUZZ_SEED", "22"))  # another seed explores further
COUNT = 1100


@pytest.fixture(scope="module")
def api(kube: KubeCluster) -> Iterator[k8s.ApiClient]:
    kube.kubectl_run("apply", "-f", str(ROOT / "crds" / "scalingpolicies.autozero.dev.yaml"))
    kube.wait_established("scalingpolicies.autozero.dev")
    client = config.new_client_from_config(str(kube.kubeconfig))
    try:
        yield client
    finally:
        client.close()


def server_verdict(api: k8s.ApiClient, manifest: dict[str, Any]) -> tuple[bool, str]:
    """(accepted, what the apiserver said), for a server-side dry-run create."""
    url = (
        f"{api.configuration.host}/apis/autozero.dev/v1alpha1/namespaces/default/"
        "scalingpolicies?fieldValidation=Strict&dryRun=All"
    )
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    response = api.call_api(
        "POST", url, header_params=headers, body=as_kubectl_sends(manifest), _request_timeout=60
    )
    text = response.read().decode(errors="replace")
    if response.status == 201:
        return True, ""
    if response.status in (400, 422):
        return False, json.loads(text).get("message", text)
    raise AssertionError(f"the apiserver answered {response.status}: {text[:500]}")


def schema_verdict(manifest: dict[str, Any]) -> list[str]:
    errors = identity_errors(manifest) + schema_errors(manifest)[0]
    return [f"{e.path}: {e.message}" for e in errors]


def _describe(mutant: Mutant, said: str, errors: list[str]) -> str:
    return (
        f"seed {SEED} index {mutant.index} ({mutant.example}: {'; '.join(mutant.mutations)})\n"
        f"  apiserver: {said[:300] or 'accepted'}\n  validate: {errors[:3] or 'accepted'}"
    )


def test_mutants_cover_the_kinds_of_mistake() -> None:
    made = mutants(SEED, COUNT)
    assert [m.manifest for m in made[:50]] == [m.manifest for m in mutants(SEED, 50)]
    kinds = {m.split(" ", 1)[0] for mutant in made for m in mutant.mutations}
    assert {"type", "string", "number", "delete", "add", "grow"} <= kinds, kinds
    assert sum(1 for m in made if m.mutations) >= 1000


def test_the_apiserver_and_validate_agree_on_every_mutant(
    api: k8s.ApiClient, tmp_path: Path
) -> None:
    made = mutants(SEED, COUNT)
    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(lambda m: server_verdict(api, m.manifest), made))

    file = tmp_path / "mutants.yaml"
    file.write_text(yaml.safe_dump_all([m.manifest for m in made], allow_unicode=True))
    run = subprocess.run(
        [str(AUTOZERO), "validate", "--output", "json", "-f", str(file)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert "Traceback" not in run.stdout + run.stderr, run.stderr[-3000:]
    assert "internal error" not in run.stderr, run.stderr[-3000:]
    assert run.returncode == 1, run.stderr[-3000:]
    entries = {e["document"]: e for e in json.loads(run.stdout)}

    disagreements = []
    for mutant, (accepted, said) in zip(made, verdicts, strict=True):
        entry = entries[mutant.index + 1]
        if accepted == entry["valid"]:
            continue
        # Refused by validate only: fine when only its checks beyond the CRD refused it.
        errors = schema_verdict(mutant.manifest) if accepted else []
        if not accepted or errors:
            cli_errors = [f"{e['path']}: {e['message']}" for e in entry["errors"]]
            disagreements.append(_describe(mutant, said, errors or cli_errors))
    accepted_count = sum(1 for accepted, _ in verdicts if accepted)
    assert not disagreements, (
        f"{len(disagreements)} of {COUNT} judged differently "
        f"({accepted_count} accepted by the apiserver):\n" + "\n".join(disagreements[:40])
    )
    # Both answers occur: a generator whose mutants were all refused would test little.
    assert 50 <= accepted_count <= COUNT - 500, accepted_count
