"""The benchmark and validation scripts still speak the product's API (they run outside the test suite)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "validation").glob("*.py")])


def _imports(path: Path) -> list[tuple[str, str]]:
    """Every ``from training_roi… import name`` in the script, top level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.module, alias.name) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("training_roi")
            for alias in node.names]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_product_name_a_script_imports_exists(script: Path):
    missing = []
    for module, name in _imports(script):
        loaded = importlib.import_module(module)
        if not hasattr(loaded, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert missing == []
