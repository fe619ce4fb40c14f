"""Units' attributes as covariates: indicators by hand, and the covariate world where they change the answer."""

from __future__ import annotations

import json
from pathlib import Path

import ibis
import polars as pl
import pytest

from training_roi.errors import StudyError
from training_roi.measure.covariates import unit_covariates


def test_a_categorical_attribute_becomes_indicators_against_its_most_common_value():
    con = ibis.duckdb.connect()
    con.create_table("crm_user", pl.DataFrame({
        "user_id": ["a", "b", "c", "d", "e"],
        "role_id": ["EMEA", "NA", "NA", None, "APAC"],
        "department": ["Sales"] * 5,
    }).to_arrow())
    frame, names = unit_covariates(con, "rep", ["role"])
    # NA is the most common value (2 of 5): the reference. The others, the empty one included, get a column.
    assert names == ("role=(missing)", "role=APAC", "role=EMEA")
    got = {r["unit"]: tuple(r[n] for n in names) for r in frame.iter_rows(named=True)}
    assert got == {"a": (0, 0, 1), "b": (0, 0, 0), "c": (0, 0, 0), "d": (1, 0, 0), "e": (0, 1, 0)}
    with pytest.raises(ValueError, match="unknown covariate 'region' for reps: expected one of role"):
        unit_covariates(con, "rep", ["region"])


def test_a_numeric_attribute_stays_a_number_and_a_missing_one_takes_the_mean():
    con = ibis.duckdb.connect()
    con.create_table("crm_account", pl.DataFrame({
        "account_id": ["x", "y", "z"], "employees": [10, None, 30],
    }, schema={"account_id": pl.String, "employees": pl.Int64}).to_arrow())
    frame, names = unit_covariates(con, "account", ["employees"])
    assert names == ("employees",)
    assert dict(frame.select("unit", "employees").iter_rows()) == {"x": 10.0, "y": 20.0, "z": 30.0}


def test_a_study_naming_an_attribute_the_unit_lacks_is_refused():
    from training_roi.study import Study, plan_study

    study = Study.model_validate({"name": "s", "program": {"name": "p", "activities": ["c"]},
                                  "isolation": {"covariates": ["industry"]}})
    with pytest.raises(StudyError, match="'industry' is not an attribute of a rep: expected one of role"):
        plan_study(study)


@pytest.mark.slow
def test_in_the_covariate_world_the_study_s_covariate_turns_the_recommendation(tmp_path: Path):
    """Regions whose markets move apart decide who enrols: with ``covariates: [role]`` the doubly robust DiD leads.

    The simulator's truth is the 180-day win-rate lift; the plain DiD credits the regions' markets
    (about three times the effect), the doubly robust estimators condition on the role (one per region).
    """
    from training_roi import Evaluation, Study, connect, evaluate, ingest_folder, link
    from training_roi.simulate import simulate

    folder = tmp_path / "org"
    simulate(folder, reps=600, months=24, seed=3, scenario="covariate_trends")
    truth = json.loads((folder / "truth.json").read_text())
    con = connect(tmp_path / "w.duckdb")
    ingest_folder(folder, con)
    link(con)
    study = Study.model_validate({
        "name": "covariates", "program": {"name": truth["program"]["name"],
                                          "activities": [truth["program"]["course_activity_id"]]},
        "isolation": {"method": "all", "bootstrap_replicates": 199, "covariates": ["role"]},
        "costs": {"participant_time": {"hourly_rate": 60}},
        "attribution": {"enabled": False},
    })
    answer = evaluate(con, study)
    assert isinstance(answer, Evaluation)
    comparison = answer.methods
    assert comparison is not None
    # Reps were trained in several months: the doubly robust group-time estimator leads.
    assert comparison.recommended == "staggered_dr", comparison.reason
    dr, twfe = comparison.result("staggered_dr"), comparison.result("twfe")
    assert dr is not None and dr.effect is not None and twfe is not None and twfe.effect is not None
    assert all(row["feature"].startswith("role=") for row in comparison.result("drdid").effect.diagnostics["balance"])
    true = truth["truth"]["windows"]["180"]["att_win_rate"]
    assert abs(dr.effect.estimate - true) < abs(twfe.effect.estimate - true)


def test_values_and_the_reference_are_those_of_the_panel_s_units():
    con = ibis.duckdb.connect()
    con.create_table("crm_user", pl.DataFrame({
        "user_id": ["a", "b", "c", "m1", "m2", "m3"],
        "role_id": ["EMEA", "NA", "NA", "VP", "VP", "VP"],  # the managers' role is the org's most common
    }).to_arrow())
    frame, names = unit_covariates(con, "rep", ["role"], units=["a", "b", "c", "z"])
    assert names == ("role=(missing)", "role=EMEA")  # NA is the reps' reference; z is in no export
    assert frame["unit"].to_list() == ["a", "b", "c", "z"]
    assert frame["role=(missing)"].to_list() == [0, 0, 0, 1]


def test_labels_keep_categories_and_cut_numbers_into_thirds():
    from training_roi.measure.covariates import unit_labels

    con = ibis.duckdb.connect()
    con.create_table("crm_account", pl.DataFrame({
        "account_id": ["a", "b", "c", "d", "e", "f"],
        "industry": ["Retail", "", None, "Retail", "=cmd", "Energy"],
        "employees": [10, 20, 30, 40, 50, None],
    }, schema={"account_id": pl.String, "industry": pl.String, "employees": pl.Int64}).to_arrow())
    labels = unit_labels(con, "account", ["industry", "employees"], ["a", "b", "c", "d", "e", "f", "zz"])
    assert labels["unit"].to_list() == ["a", "b", "c", "d", "e", "f", "zz"]
    assert labels["industry"].to_list() == ["Retail", "(missing)", "(missing)", "Retail", "=cmd", "Energy",
                                            "(missing)"]
    # Thirds of 10, 20, 30, 40, 50 (numpy's quantiles: 23.3 and 36.7), a missing number its own level.
    assert labels["employees"].to_list() == ["under 23", "under 23", "23 to 37", "37 and over", "37 and over",
                                             "(missing)", "(missing)"]
    with pytest.raises(ValueError, match="unknown attribute 'role' for accounts"):
        unit_labels(con, "account", ["role"], ["a"])


def test_a_manager_is_labelled_by_name_and_id():
    from training_roi.measure.covariates import unit_labels

    con = ibis.duckdb.connect()
    con.create_table("crm_user", pl.DataFrame({
        "user_id": ["r1", "r2", "r3", "m1", "m2"],
        "name": ["Ann", "Bo", "Cy", "Dana Lee", None],
        "manager_id": ["m1", "m2", None, None, None],
    }).to_arrow())
    labels = unit_labels(con, "rep", ["manager"], ["r1", "r2", "r3"])
    assert labels["manager"].to_list() == ["Dana Lee (m1)", "m2", "(missing)"]
