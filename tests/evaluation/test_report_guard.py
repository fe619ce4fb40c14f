"""Regression guards on the warm report's speed, relative to this machine's speed at the time.

The evaluation of a small simulated org (the default study without the attribution), and the
attribution of the same study alone, are each timed against a fixed pure-Python loop
(``benchmarks/ingest.py``'s calibration), each the best of three runs, so the ratio hardly
depends on how fast or how busy the machine is. A test fails when its ratio is more than twice
the one recorded in ``benchmarks/guard.json``. After a change that is meant to make them slower
(or faster), record the ratios again on an idle machine::

    TRAINING_ROI_RECORD_GUARD=1 pytest tests/evaluation/test_report_guard.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from training_roi import Study, evaluate
from training_roi.attribute import attribute_study
from training_roi.study.plan import plan_study

ROOT = Path(__file__).resolve().parents[2]
GUARD = ROOT / "benchmarks" / "guard.json"
pytestmark = pytest.mark.guard  # timed: run alone, after the other tests (make test)

SLOWER = 2.0
"""How many times the recorded ratio the report may take before the guard fails."""


def _calibration() -> Callable[[], float]:
    """The ingest benchmark's calibration loop (milliseconds), loaded from its script."""
    spec = importlib.util.spec_from_file_location("benchmark_ingest", ROOT / "benchmarks" / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._calibration_ms


def _best_ms(run: Callable[[], object], times: int = 3) -> float:
    """The fastest of ``times`` runs, in milliseconds: the one least slowed by other work on the machine."""
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def _guard(name: str, what: str, run: Callable[[], object]) -> None:
    """Time ``run`` against the calibration loop; record the ratio or hold it to twice the recorded one."""
    calibration = _calibration()
    ms = _best_ms(run)
    calibration_ms = _best_ms(calibration)
    ratio = ms / calibration_ms
    guards = json.loads(GUARD.read_text())
    if os.environ.get("TRAINING_ROI_RECORD_GUARD"):
        guards[name] = {"ratio": round(ratio, 2), "ms": round(ms), "calibration_ms": round(calibration_ms),
                        "recorded": datetime.now(UTC).date().isoformat(),
                        "what": f"best of 3 {what} ÷ best of 3 runs of benchmarks/ingest.py's calibration loop"}
        GUARD.write_text(json.dumps(guards, indent=2, ensure_ascii=False) + "\n")
    recorded = guards[name]["ratio"]
    assert ratio <= SLOWER * recorded, (
        f"{name} took {ms:,.0f} ms, {ratio:.1f}× the calibration loop ({calibration_ms:,.0f} ms); "
        f"recorded: {recorded:.1f}× — more than {SLOWER:.0f}× slower (see this module's docstring to record again)")


def _study(course: str, attribution: bool) -> Study:
    return Study.model_validate({
        "name": "guard", "program": {"name": "Sales Excellence", "activities": [course]},
        "costs": {"participant_time": {"hourly_rate": 60}}, "attribution": {"enabled": attribution}})


def test_the_warm_report_is_not_twice_as_slow_as_recorded(simulated_org):
    con, course, _ = simulated_org
    study = _study(course, attribution=False)
    _guard("report", "evaluations of the 300-rep, 36-month simulated org (seed 11; the default study without "
                     "the attribution)", lambda: evaluate(con, study))


def test_the_attribution_is_not_twice_as_slow_as_recorded(simulated_org):
    con, course, _ = simulated_org
    plan = plan_study(_study(course, attribution=True))

    def attribute() -> object:
        return attribute_study(con, plan.attribution, program=plan.program, activities=plan.cohort.activities,
                               unit=plan.unit, window_days=plan.windows.primary_days, since=None,
                               incremental_revenue=1_000_000.0)

    _guard("attribution", "attributions of the same org's won deals (every model, the learner split and the "
                          "lift calibration)", attribute)
