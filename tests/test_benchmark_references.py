"""The speed benchmark's two reference scripts answer the seed's model alike, and as the product does.

`benchmarks/reference_pandas.py` and `benchmarks/reference_duckdb.py` compute the same model from
the raw files by different means (pandas frames; DuckDB SQL). Sharing only the random draws and the
arithmetic on per-rep sums, they must agree to the last bit — which checks each one's reading,
linking, training dates and windows against the other's. Against the product they agree within
a tolerance: the product validates and quarantines rows, and counts a comparison rep only while it
was with the org (redrawing the pseudo training dates of reps hired later or gone by then, and
cutting its months to its tenure), which the scripts do not.
"""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

from training_roi import connect
from training_roi.evaluation import evaluate
from training_roi.ingest.folder import ingest_folder
from training_roi.linking import link
from training_roi.simulate import simulate
from training_roi.study import Study

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("refs") / "data"
    simulate(folder, reps=300, months=24, seed=5)
    return folder, json.loads((folder / "truth.json").read_text())["program"]["course_activity_id"]


def test_the_pandas_and_duckdb_references_agree_exactly_and_with_the_product(org, tmp_path, monkeypatch):
    folder, course = org
    by_pandas = _script("reference_pandas", monkeypatch).answer(folder, course)
    by_sql = _script("reference_duckdb", monkeypatch).answer(folder, course)
    assert by_pandas == by_sql
    ref = by_pandas["kpis"]["win_rate"]
    # Who was trained is the simulation's truth: every trained rep found, from the statements and
    # the completion report, and nobody else.
    with (folder / "truth_reps.csv").open(encoding="utf-8") as f:
        trained = sum(row["trained"] == "true" for row in csv.DictReader(f))
    assert by_pandas["trained_reps"] == trained > 0

    con = connect(tmp_path / "wh.duckdb")
    ingest_folder(folder, con)
    link(con)
    study = Study.model_validate({"name": "Sales Excellence", "program": {"activities": [course]},
                                  "attribution": {"enabled": False}, "forecast": {"enabled": False}})
    product = evaluate(con, study).primary  # type: ignore[union-attr]
    con.disconnect()
    win = next(k for k in product.kpis if k.kpi == "win_rate")
    assert win.did is not None
    # Tolerance: a tenth of the references' 95% interval's width. The product's groups differ from
    # the scripts' by the reps whose pseudo dates fall outside their tenure (redrawn or dropped) and
    # by the rows it quarantines; that moves the pooled rates by far less than the sampling noise
    # the interval measures, while a wrong window, link or training date moves them by more.
    tolerance = (ref["ci_high"] - ref["ci_low"]) / 10
    assert abs(win.did.estimate - ref["did"]) <= tolerance
    assert product.trained_units == by_pandas["trained_reps"]
    # The trained group is the same reps with the same windows: its pooled win rates are the same sums.
    assert (win.trained_baseline, win.trained_post) == (ref["trained_pre"], ref["trained_post"])
