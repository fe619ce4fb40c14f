"""Every code block of docs/estimators.md runs, in order, and the page's claims about its panel hold."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "estimators.md"


@pytest.fixture(scope="module")
def namespace() -> dict[str, object]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 7
    ns: dict[str, object] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), ns)
    return ns


def test_every_example_runs_and_the_recommendation_is_the_covariate_aware_design(namespace):
    c = namespace["c"]
    twfe, dr = namespace["twfe"], namespace["dr"]
    # The simulated effect is 5; the segment that grows 3 a year faster is over-represented among the trained.
    assert c.recommended == "drdid", c.reason
    assert twfe.estimate > 6 and not twfe.ci_low <= 5 <= twfe.ci_high
    assert dr.ci_low <= 5 <= dr.ci_high
    assert namespace["opinion"].ci_low == 0.0


def test_the_array_example_is_a_hand_checkable_difference(namespace):
    # The untrained units' changes do not depend on x much; the trained changed by about 2, the others by 0.5.
    fit = namespace["fit"]
    assert 1.0 < fit.estimate < 2.0
    # And it is the improved doubly robust estimate of the `differences` package on the same eight rows.
    pytest.importorskip("differences", reason="differences (the dev extra) is not installed")
    from tests.isolate.test_drdid import _reference

    att, se = _reference("dr", namespace["y0"], namespace["y1"], namespace["treated"], namespace["x"])
    assert fit.estimate == pytest.approx(att, rel=1e-6)
    assert fit.std_error == pytest.approx(se, rel=1e-6)
