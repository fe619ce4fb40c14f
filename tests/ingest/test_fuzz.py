"""A fixed set of mutated inputs, replayed: every file loads, quarantines or is refused — none crashes or loses a row.

The campaign itself (``validation/fuzz.py``) runs ten thousand and more; this replays 400 of its
trials (seed 7) in a few seconds, on every source the product reads.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.builders import validation_script


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    """The campaign script."""
    return validation_script("fuzz")


def test_mutated_inputs_never_crash_and_every_record_is_accounted_for(fuzz: ModuleType, tmp_path: Path,
                                                                      capfd: pytest.CaptureFixture[str]):
    result = fuzz.run(400, 7, work=tmp_path)
    assert result.crashes == [] and result.unaccounted_trials == 0
    assert result.outside_reads == [] and result.hostile_paths > 0  # studies pointed outside: none read
    # Not vacuous: the mutations reached every source, and both outcomes happened.
    assert set(result.by_source) == {*fuzz.SOURCES, "xapi", "study"} - {"Event", "Campaign", "CampaignMember"}
    assert result.verdicts["refused"] > 20 and result.verdicts["loaded"] > 200
    assert "Exception ignored" not in capfd.readouterr().err  # nothing printed behind the user's back


def test_a_crash_would_be_caught(fuzz: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The harness itself can fail: a reader that raises an error of its own is reported as a crash.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(fuzz, "read_source", broken)
    result = fuzz.run(30, 7, work=tmp_path)
    assert result.crashes and "RuntimeError: a bug" in result.crashes[0][2]


def test_a_file_opened_outside_the_study_would_be_caught(fuzz: ModuleType, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("not the study's")

    def nosy(path: Path) -> None:
        secret.read_text()

    monkeypatch.setattr(fuzz, "load_study", nosy)
    result = fuzz.run(60, 7, work=tmp_path / "work")
    assert str(secret) in result.outside_reads
    assert any("opened outside the study's folder" in detail for _, _, detail in result.crashes)
