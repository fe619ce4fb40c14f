"""Every estimator on LaLonde's job-training data: the experiment's answer, and the observational designs against it.

The National Supported Work demonstration (NSW) randomised who got job training; LaLonde (1986)
showed that non-experimental estimators, given the trained people and a comparison group drawn
from a general population survey (the Current Population Survey, CPS) instead of the
experiment's own controls, mostly failed to recover the experimental answer. Dehejia & Wahba
(1999) and the difference-in-differences literature since (Abadie 2005; Sant'Anna & Zhao 2020)
use it as the benchmark a design must pass. The Dehejia–Wahba subsample ships with the
``causaldata`` package (``nsw_mixtape``: 185 trained, 260 experimental controls; ``cps_mixtape``:
15,992 CPS people); outcomes are real earnings in 1974, 1975 (before training) and 1978 (after).

Each sample becomes a :class:`~training_roi.isolate.UnitPanel` built as a notebook user would
(``UnitPanel.from_data`` on a pandas frame, numbered periods 0, 1, 2 for 1974, 1975, 1978,
trained units treated from period 2), and :func:`~training_roi.isolate.compare_methods` runs
every estimator and recommends one. The experimental answer is the difference of mean 1978
earnings between trained and experimental controls ($1,794) with its 95% interval; an estimate
counts as credible when it lies inside that interval (the range credible observational methods
reach on these data in the literature, about $1,400–$2,100, lies well inside it).

    python validation/lalonde.py [--replicates 999]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from training_roi._format import money
from training_roi.isolate import UnitPanel, compare_methods

COVARIATES = ("age", "age2", "educ", "educ2", "black", "hisp", "marr", "nodegree", "re74k", "u74")
"""Dehejia & Wahba's covariates (1974 earnings in thousands; u74: no earnings in 1974)."""

YEARS = (("re74", 0), ("re75", 1), ("re78", 2))


def samples() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The experimental sample (NSW trained and controls) and the observational one (NSW trained and CPS)."""
    from causaldata import cps_mixtape, nsw_mixtape

    nsw = nsw_mixtape.load_pandas().data
    cps = cps_mixtape.load_pandas().data
    trained = nsw[nsw["treat"] == 1]
    return nsw.reset_index(drop=True), pd.concat([trained, cps], ignore_index=True)


def experimental_answer(nsw: pd.DataFrame) -> tuple[float, float, float]:
    """The difference of mean 1978 earnings, trained − control, and its 95% interval (unequal variances)."""
    t = nsw.loc[nsw["treat"] == 1, "re78"].to_numpy(float)
    c = nsw.loc[nsw["treat"] == 0, "re78"].to_numpy(float)
    diff = t.mean() - c.mean()
    se = math.sqrt(t.var(ddof=1) / t.size + c.var(ddof=1) / c.size)
    return diff, diff - 1.959964 * se, diff + 1.959964 * se


def long_panel(people: pd.DataFrame) -> UnitPanel:
    """One row per person and period (0 = 1974, 1 = 1975, 2 = 1978), trained from period 2, with the covariates."""
    p = people.reset_index(drop=True).assign(
        person=lambda d: [f"p{i:05d}" for i in range(len(d))],
        age2=lambda d: d["age"] ** 2, educ2=lambda d: d["educ"] ** 2,
        re74k=lambda d: d["re74"] / 1000, u74=lambda d: (d["re74"] == 0).astype(float),
    )
    rows = [p.assign(period=k, earnings=p[col], trained_from=np.where(p["treat"] == 1, 2, None))
            for col, k in YEARS]
    long = pd.concat(rows, ignore_index=True)
    long["trained_from"] = long["trained_from"].astype("Int64")
    return UnitPanel.from_data(long, unit="person", period="period", outcome="earnings", treated_at="trained_from",
                               covariates=COVARIATES, grain="index")


def run(replicates: int) -> dict[str, Any]:
    """The experimental answer, and every method on the experimental and the observational panel."""
    nsw, observational = samples()
    answer = experimental_answer(nsw)
    out: dict[str, Any] = {"answer": answer}
    for name, people in (("experimental", nsw), ("observational", observational)):
        start = time.perf_counter()
        c = compare_methods(long_panel(people), post_months=1, replicates=replicates, refutations=False,
                            randomised=name == "experimental")
        out[name] = c
        print(f"{name}: {len(people):,} people, {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return out


def _row(label: str, effect: Any, answer: tuple[float, float, float], recommended: bool) -> str:
    _, lo, hi = answer
    inside = lo <= effect.estimate <= hi
    mark = " **(recommended)**" if recommended else ""
    covers = effect.ci_low <= answer[0] <= effect.ci_high
    ratio = f"{effect.estimate / answer[0]:.2f}×".replace("-", "−")
    return (f"| {label}{mark} | {money(effect.estimate)} [{money(effect.ci_low)}, {money(effect.ci_high)}] | "
            f"{ratio} | {'yes' if inside else 'no'}; interval {'covers' if covers else 'misses'} the answer |")


def main() -> None:
    """Run and print the Markdown tables of validation/README.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=999, help="bootstrap replicates per estimator")
    args = parser.parse_args()
    out = run(args.replicates)
    answer = out["answer"]
    print(f"experimental answer: {money(answer[0])} [95%: {money(answer[1])}, {money(answer[2])}]\n")
    for name in ("experimental", "observational"):
        c = out[name]
        print(f"### {name} sample\n")
        print("| estimator | estimate [95%] | × the experimental answer | inside the experiment's interval? |")
        print("| --- | ---: | ---: | --- |")
        for r in c.results:
            print(_row(r.label, r.effect, answer, r.method == c.recommended)
                  if r.effect is not None else f"| {r.label} | not applicable: {r.not_applicable} | | |")
        print(f"\nrecommended: {c.recommended} — {c.reason}\n")


if __name__ == "__main__":
    main()
