"""The covariate worlds: regional markets that trend apart, and enrolment that follows the region.

Checks re-derive from the written files, independently of the simulator's code, that the region is
in the export, that the markets' trends are in the untreated outcomes exactly as truth.json states,
that enrolment depends on the region alone, and that a plain difference-in-differences is far off
while one within regions is not.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from training_roi.simulate import SCENARIOS, simulate

WORLDS = ("covariate_trends", "poor_overlap", "covariate_null")
ORG = {"reps": 400, "months": 24, "seed": 5}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One org per covariate world and the randomised world of the same seed (the same deals)."""
    out = {}
    for name in (*WORLDS, "randomised", "selection"):
        out[name] = tmp_path_factory.mktemp(name)
        simulate(out[name], scenario=name, **ORG)
    return out


def _truth(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "truth.json").read_text(encoding="utf-8"))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def test_the_worlds_are_listed_and_described() -> None:
    for name in WORLDS:
        assert name in SCENARIOS and "region" in SCENARIOS[name]
    assert "zero" in SCENARIOS["covariate_null"] and "overlap" in SCENARIOS["poor_overlap"]


@pytest.mark.parametrize("name", WORLDS)
def test_the_organisation_is_the_seeds(folders: dict[str, Path], name: str) -> None:
    """Only the markets and the training differ: users, accounts and contacts are the seed's."""
    for obj in ("User", "Account", "Contact"):
        a, b = (hashlib.sha256((folders[s] / "crm" / f"{obj}.csv").read_bytes()).hexdigest()
                for s in (name, "selection"))
        assert a == b, obj


@pytest.mark.parametrize("name", WORLDS)
def test_the_covariate_is_in_the_user_export(folders: dict[str, Path], name: str) -> None:
    """truth.json names the attribute; every rep of a region carries that region's role in User.csv."""
    truth = _truth(folders[name])
    cov = truth["covariate"]
    assert cov["name"] == "region" == cov["reps_file_column"]
    assert cov["user_fields"] == ["UserRoleId", "Region__c"] and cov["warehouse_column"] == "crm_user.role_id"
    users = {r["Id"]: r for r in _rows(folders[name] / "crm" / "User.csv")}
    reps = _rows(folders[name] / "truth_reps.csv")
    for rep in reps:
        user = users[rep["user_id"]]
        assert user["Region__c"] == rep["region"]
        assert user["UserRoleId"] == cov["regions"][rep["region"]]["role_id"]
    roles = [r["role_id"] for r in cov["regions"].values()]
    assert len(set(roles)) == len(roles)
    assert sum(r["reps"] for r in cov["regions"].values()) == truth["reps"] == len(reps)
    assert sum(r["trained_reps"] for r in cov["regions"].values()) == truth["trained"]["reps"]
    assert set(cov["growth_regions"]) == {n for n, r in cov["regions"].items() if r["growth"]}


@pytest.mark.parametrize("name", WORLDS)
def test_each_region_trends_as_stated(folders: dict[str, Path], name: str) -> None:
    """The untreated log-odds differ from the same deal's in the randomised world by the region's trend × years."""
    truth = _truth(folders[name])
    region_of = {r["user_id"]: r["region"] for r in _rows(folders[name] / "truth_reps.csv")}
    trend = {n: r["trend_win_logit_per_year"] for n, r in truth["covariate"]["regions"].items()}
    a = pl.read_parquet(folders[name] / "truth_opportunities.parquet")
    b = pl.read_parquet(folders["randomised"] / "truth_opportunities.parquet")
    assert a["opportunity_id"].equals(b["opportunity_id"])
    start = date.fromisoformat(truth["start"])
    years = np.array([(d - start).days for d in a["created_date"].to_list()]) / 365.25
    expected = np.array([trend[region_of[o]] for o in a["owner_id"].to_list()]) * years
    shift = _logit(a["p0"].to_numpy()) - _logit(b["p0"].to_numpy())
    assert np.allclose(shift, expected, atol=1e-9)
    assert min(trend.values()) < 0 < max(trend.values())


def test_enrolment_follows_the_region_not_the_skill(folders: dict[str, Path]) -> None:
    truth = _truth(folders["covariate_trends"])
    reps = pl.read_csv(folders["covariate_trends"] / "truth_reps.csv").filter(pl.col("eligible"))
    for name, r in truth["covariate"]["regions"].items():
        here = reps.filter(pl.col("region") == name)
        p, n = r["enrol_probability"], here.height
        assert abs(here["enrolled"].mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
        assert here.height == r["eligible_reps"] and here["trained"].sum() == r["trained_reps"]
    growth = reps["region"].is_in(truth["covariate"]["growth_regions"])
    for group in (growth, ~growth):
        here = reps.filter(group)
        gap = here.filter(pl.col("enrolled"))["skill"].mean() - here.filter(~pl.col("enrolled"))["skill"].mean()
        assert abs(gap) < 0.35  # random within a region (selection's gap: about 0.6)


def test_poor_overlap_leaves_few_untrained_peers(folders: dict[str, Path]) -> None:
    """Nearly every trained rep is from a growth region, where about one eligible rep in ten is untrained."""
    regions = _truth(folders["poor_overlap"])["covariate"]["regions"]
    growth = [r for r in regions.values() if r["growth"]]
    trained = sum(r["trained_reps"] for r in regions.values())
    assert sum(r["trained_reps"] for r in growth) / trained > 0.85
    untrained_growth = sum(r["eligible_reps"] - r["trained_reps"] for r in growth)
    assert untrained_growth < 0.15 * sum(r["eligible_reps"] for r in growth)


def test_the_null_world_has_no_effect(folders: dict[str, Path]) -> None:
    truth = _truth(folders["covariate_null"])
    assert truth["effects"] == {"win_logit": 0.0, "deal_size": 0.0, "cycle": 0.0, "ramp_days": 0}
    for window in truth["truth"]["windows"].values():
        assert window["att_win_rate"] == 0.0 and window["incremental_revenue"] == 0.0
    df = pl.read_parquet(folders["covariate_null"] / "truth_opportunities.parquet")
    assert (df["p0"] == df["p1"]).all() and (df["amount0"] == df["amount1"]).all()


def test_the_effect_is_the_selection_scenarios(folders: dict[str, Path]) -> None:
    for name in ("covariate_trends", "poor_overlap"):
        truth = _truth(folders[name])
        assert truth["effects"] == _truth(folders["selection"])["effects"]
        assert 0.015 < truth["truth"]["windows"]["180"]["att_win_rate"] < 0.04


def _did(won: pl.DataFrame) -> float:
    """(trained post − trained pre) − (untrained post − untrained pre) of the win rate."""
    r = {(t, p): won.filter((pl.col("trained") == t) & (pl.col("period") == p))["won"].mean()
         for t in (True, False) for p in ("pre", "post")}
    return float(r[True, "post"] - r[True, "pre"] - (r[False, "post"] - r[False, "pre"]))


@pytest.mark.parametrize("name", ["covariate_trends", "covariate_null"])
def test_plain_did_credits_the_markets_and_within_region_does_not(folders: dict[str, Path], name: str) -> None:
    """Recomputed from the Opportunity export: the plain pre/post DiD is far above the truth, within regions close."""
    out = folders[name]
    truth = _truth(out)
    reps = {r["user_id"]: r for r in _rows(out / "truth_reps.csv")}
    lo, hi = (date.fromisoformat(truth["program"][k]) for k in ("rollout_start", "rollout_end"))
    rows = []
    for o in _rows(out / "crm" / "Opportunity.csv"):
        if o["IsClosed"] != "true" or o["IsDeleted"] != "false":
            continue
        created = date.fromisoformat(o["CreatedDate"][:10])
        if lo <= created < hi:
            continue
        rep = reps[o["OwnerId"]]
        rows.append({"trained": rep["trained"] == "true", "region": rep["region"], "won": o["IsWon"] == "true",
                     "period": "pre" if created < lo else "post"})
    df = pl.DataFrame(rows)
    att = truth["truth"]["windows"]["180"]["att_win_rate"]
    plain = _did(df)
    parts = [(_did(df.filter(pl.col("region") == g)),
              df.filter((pl.col("region") == g) & pl.col("trained") & (pl.col("period") == "post")).height)
             for g in truth["covariate"]["regions"]]
    within = sum(d * w for d, w in parts) / sum(w for _, w in parts)
    assert plain - att > 0.08
    assert abs(within - att) < 0.04
    diag = truth["diagnostics"]
    assert diag["did_pre_post_plain"] == pytest.approx(plain, abs=0.002)  # CreatedDate's UTC day, not its text's
    assert diag["did_pre_post_within_covariate"] == pytest.approx(within, abs=0.01)


def test_the_worlds_are_reproducible(tmp_path: Path) -> None:
    digests = []
    for folder in (tmp_path / "a", tmp_path / "b"):
        simulate(folder, reps=20, months=12, seed=3, scenario="poor_overlap")
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
                        if p.is_file()})
    assert digests[0] == digests[1]
