"""The layout keeps its promises: the flow's direction, no cycles, no monoliths (docs/architecture.md)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "training_roi"
MAX_LINES = 800


def test_import_contracts_are_kept(capsys: pytest.CaptureFixture[str]):
    # The contracts live in pyproject.toml ([tool.importlinter]): the stages' layers (a package imports
    # only packages below it), the simulator apart, estimators without the warehouse, no cycles.
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, capsys.readouterr().out


def test_no_module_is_a_monolith():
    sizes = {str(p.relative_to(SRC)): len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_a_broken_contract_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch):
    # The check is not vacuous: a copy of the package where a low stage imports a high one breaks it.
    from importlinter.cli import lint_imports

    copy = tmp_path / "training_roi"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "measure" / "upward.py").write_text("from training_roi.evaluation import evaluate\n", encoding="utf-8")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "training_roi" or m.startswith("training_roi.")]:
        monkeypatch.delitem(sys.modules, name)
    assert lint_imports(config_filename=str(tmp_path / "pyproject.toml"), no_cache=True) == 1
    assert "training_roi.measure.upward -> training_roi.evaluation" in capsys.readouterr().out
