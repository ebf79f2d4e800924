"""A sleep autozero withdrew because work came is reported as what it is, not as a failure: the
policy stays Ready, the status holds a note, `autozero run` prints no ERROR and does not count
the group as failed, and the scale-action counter says `withdrawn` (an alert on
`result="error"` must not fire because a queue filled up)."""

from __future__ import annotations

import json
import re

import pytest
from autozero.controller.status import build_status
from autozero.engine.decision import Action, Decision, Reason
from autozero.runtime.metrics import Metrics
from autozero.runtime.report import CycleReport, GroupReport
from autozero.standalone import failed, report_lines
from autozero.targets.base import SleepWithdrawn, TargetError
from prometheus_client import generate_latest
from support.engine import T0

SLEEP = Decision("workers", T0, "default", 1, 0, Action.SLEEP, Reason.IDLE, "idle 3s")
WITHDRAWN = SleepWithdrawn(
    "workers", "the sleep stopped before its last step: work came: jobs pending=1"
)
FAILED = TargetError("workers", "HTTP 503 backendError: the service is unavailable")


def report(error: TargetError) -> CycleReport:
    group = GroupReport("workers", SLEEP, error=error, acted=True)
    return CycleReport("nightly", T0, (group,), {}, evaluated=frozenset({"workers"}))


def conditions(status: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}  # type: ignore[attr-defined, index]


@pytest.mark.parametrize(
    ("error", "key", "ready", "degraded"),
    [
        pytest.param(
            WITHDRAWN, "note", ("True", "Evaluated"), ("False", "Healthy"), id="withdrawn"
        ),
        pytest.param(
            FAILED, "error", ("False", "TargetError"), ("True", "TargetError"), id="failed"
        ),
    ],
)
def test_the_status_says_a_withdrawn_sleep_without_calling_the_policy_broken(
    error: TargetError, key: str, ready: tuple[str, str], degraded: tuple[str, str]
) -> None:
    status = build_status(report(error), {}, generation=1, paused=False, previous={})
    (group,) = status["groups"]
    assert group[key] == str(error)
    assert not ({"note", "error"} - {key}) & group.keys()
    assert conditions(status)["Ready"] == ready
    assert conditions(status)["Degraded"] == degraded


def test_autozero_run_prints_a_withdrawn_sleep_as_a_note_and_not_as_a_failure() -> None:
    (text,) = report_lines(report(WITHDRAWN), "text")
    assert "ERROR" not in text
    assert text.endswith(
        "SleepWithdrawn: the sleep stopped before its last step: work came: jobs pending=1"
    )
    (line,) = report_lines(report(WITHDRAWN), "json")
    assert json.loads(line)["note"] == str(WITHDRAWN)
    assert "error" not in json.loads(line)
    assert failed(report(WITHDRAWN)) == []
    assert "ERROR" in report_lines(report(FAILED), "text")[0]
    assert failed(report(FAILED)) == ["workers"]


def test_the_scale_action_counter_counts_a_withdrawn_sleep_apart_from_errors() -> None:
    metrics = Metrics()
    metrics.record("batch", report(WITHDRAWN), 0.1)
    metrics.record("batch", report(FAILED), 0.1)
    text = generate_latest(metrics.registry).decode()
    counted = dict(
        re.findall(r'^autozero_scale_actions_total\{.*result="(\w+)".*\} (\S+)$', text, re.M)
    )
    assert counted == {"withdrawn": "1.0", "error": "1.0"}
