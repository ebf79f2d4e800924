"""The operator's warm-up loads, in a fresh interpreter, what a first pass's report would load:
after it, a first status patch, Event and CEL rule import and build nothing."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import celpy.celparser
from autozero.controller import handlers  # what the operator has imported when it warms up
before = set(sys.modules)
from autozero.controller.warmup import warm_up
seconds = warm_up()
loaded = set(sys.modules) - before
after = set(sys.modules)
from autozero.controller.cluster import Cluster  # what a first report then uses
from kubernetes import client
client.CoreV1Api; client.CoreV1Event; client.CustomObjectsApi; client.V1ObjectMeta
from autozero.policy.validate import _program
_program("self.x > 1")
print(json.dumps({
    "seconds": seconds,
    "loaded": sorted(loaded),
    "then": sorted(set(sys.modules) - after),
    "parser": celpy.celparser.CELParser.CEL_PARSER is not None,
}))
"""


def test_a_warmed_up_operator_loads_nothing_more_for_its_first_report() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    probe = json.loads(done.stdout)
    assert "kubernetes.client.api.core_v1_api" in probe["loaded"]
    assert probe["parser"], "the CEL parser was not built"
    assert probe["then"] == [], f"loaded after the warm-up: {probe['then']}"
