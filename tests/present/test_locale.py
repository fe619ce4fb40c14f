"""Figures in the study's currency and locale: U.S. conventions by default, a study's own when it names them.

Oracles: the written forms of CLDR's locales as a reader of each writes them (German groups
thousands with a period, puts the euro after the amount and writes 37,5%), and the one-pager of
the worked example answered in euros for a German reader.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from training_roi._format import money, number_style, percent
from training_roi.cli import app
from training_roi.study import Study

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "worked-example"


def test_money_and_percentages_follow_the_style_and_default_to_us_conventions():
    assert (money(-1234567.4), percent(-37.5)) == ("−$1,234,567", "−37.5%")
    with number_style("EUR", "de_DE"):
        assert money(-1234567.4).replace("\xa0", " ") == "−1.234.567 €"
        assert percent(-37.5) == "−37,5%"
    with number_style("GBP", "en_GB"):
        assert money(10000) == "£10,000"
    assert money(10000) == "$10,000"  # the style ends with its block


def test_a_study_names_a_locale_that_exists():
    base = {"name": "x", "program": {"activities": ["a"]}}
    assert Study.model_validate({**base, "locale": "de_DE"}).locale == "de_DE"
    with pytest.raises(ValueError, match="locale"):
        Study.model_validate({**base, "locale": "xx_NOPE"})


def test_the_worked_example_in_euros_for_a_german_reader(tmp_path: Path):
    data = tmp_path / "example"
    shutil.copytree(EXAMPLE, data)
    study = yaml.safe_load((data / "study.yaml").read_text(encoding="utf-8"))
    study.update(currency="EUR", locale="de_DE")
    (data / "study.yaml").write_text(yaml.safe_dump(study), encoding="utf-8")
    runner = CliRunner()
    db = tmp_path / "wh.duckdb"
    assert runner.invoke(app, ["ingest", str(data / "data"), "--db", str(db)]).exit_code == 0  # nothing quarantined
    result = runner.invoke(app, ["report", str(data / "study.yaml"), "--db", str(db), "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "summary.html").exists(), result.output
    page = (tmp_path / "out" / "summary.html").read_text(encoding="utf-8").replace("\xa0", " ")
    assert "−37,5%" in page and "10.000 €" in page and "16.000 €" in page
    assert "$" not in page
    doc = json.loads((tmp_path / "out" / "result.json").read_text(encoding="utf-8"))
    assert Decimal(doc["headline"]["roi_pct"]) == Decimal("-37.5")  # the document stays machine-readable
