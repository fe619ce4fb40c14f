"""Staggered rollouts: bias and coverage of two-way fixed effects against the group-time estimator.

Each run simulates, with NumPy, a panel of units over months: unit levels, a common trend with
seasonality, noise, and a training rollout in monthly cohorts (most units trained, a few never).
The effect is known exactly by month since training, either constant or growing (0.5 in the
training month, +0.5 each month after), and every cohort has its first ``post`` months in the
data, so the true average effect over event months 0 … post − 1 — the cohort-size-weighted mean
of every cohort's month effects, what every estimator here targets — is known exactly.

The estimators: two-way fixed effects DiD, its event study (mean of the post coefficients) and
the Callaway & Sant'Anna group-time estimator with never-trained and with not-yet-trained
controls. Prints one line per run on stderr and a Markdown table for validation/README.md.

    python validation/staggered.py --seeds 20
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date

import numpy as np
import polars as pl

from training_roi.isolate.did import Effect
from training_roi.isolate.event_study import estimate_event_study, estimate_twfe_did
from training_roi.isolate.staggered import estimate_staggered
from training_roi.measure.panels import UnitPanel

EFFECTS = {
    "constant": lambda e: np.where(e >= 0, 1.0, 0.0),
    "growing": lambda e: np.where(e >= 0, 0.5 * (e + 1), 0.0),
}


def panel(seed: int, *, units: int, months: int, never: float, post: int, shape: str) -> tuple[UnitPanel, float]:
    """A simulated staggered panel and the exact true average effect over event months 0 … post − 1."""
    rng = np.random.default_rng(seed)
    g = rng.integers(3, months - post + 1, units).astype(float)  # every cohort has post months after
    g[rng.random(units) < never] = np.inf
    t = np.arange(months)
    e = t[None, :] - np.where(np.isfinite(g), g, 10**6)[:, None]
    effect = EFFECTS[shape]
    y = (10 + rng.normal(0, 2, units)[:, None] + (0.1 * t + np.sin(t / 2))[None, :] + effect(e)
         + rng.normal(0, 1, (units, months)))
    dates = [date(2024 + k // 12, k % 12 + 1, 1) for k in range(months)]
    trained = [dates[int(x)].replace(day=15) if np.isfinite(x) else None for x in g]
    frame = pl.DataFrame({
        "unit": [f"u{i:04d}" for i in range(units) for _ in range(months)],
        "period": dates * units,
        "treated_at": [x for x in trained for _ in range(months)],
        "y": y.ravel(),
    }, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "y": pl.Float64})
    # Cohort-size weights over cells: every cohort has all post months, so the truth is the
    # plain mean of the effect over event months 0 … post − 1.
    truth = float(np.mean(effect(np.arange(post))))
    return UnitPanel(frame=frame, outcome="y", numerator="y"), truth


def one_run(seed: int, args: argparse.Namespace, shape: str) -> tuple[float, dict[str, Effect]]:
    """The truth and every estimator's effect on one simulated panel."""
    p, truth = panel(seed, units=args.units, months=args.months, never=args.never, post=args.post, shape=shape)
    return truth, {
        "two-way fixed effects": estimate_twfe_did(p, post_months=args.post),
        "event study (mean of post months)": estimate_event_study(p, leads=args.post, lags=args.post),
        "staggered, never-trained controls": estimate_staggered(p, post_months=args.post, seed=seed),
        "staggered, not-yet-trained controls": estimate_staggered(p, control="not_yet_treated",
                                                                  post_months=args.post, seed=seed),
    }


def main() -> None:
    """Run the seeds for each effect shape and print the bias and coverage table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--never", type=float, default=0.15, help="share of never-trained units")
    parser.add_argument("--post", type=int, default=6, help="months from training averaged over")
    args = parser.parse_args()
    rows = []
    for shape in EFFECTS:
        runs = []
        for seed in range(1, args.seeds + 1):
            start = time.perf_counter()
            truth, effects = one_run(seed, args, shape)
            runs.append((truth, effects))
            line = "  ".join(f"{name.split(',')[0][:12]} {e.estimate:+.3f}" for name, e in effects.items())
            print(f"{shape:8} seed {seed:3}: truth {truth:+.3f}  {line}  ({time.perf_counter() - start:.1f} s)",
                  file=sys.stderr, flush=True)
        for name in runs[0][1]:
            truth = np.array([r[0] for r in runs])
            est = np.array([r[1][name].estimate for r in runs])
            covers = np.array([r[1][name].ci_low <= r[0] <= r[1][name].ci_high for r in runs])
            width = np.array([r[1][name].ci_high - r[1][name].ci_low for r in runs])
            rows.append((shape, name, len(runs), truth.mean(), est.mean() - truth.mean(), covers.mean(),
                         width.mean()))
    print("| effect | estimator | runs | mean truth | bias | bias (% of truth) | 95% coverage | mean interval width |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shape, name, n, truth_mean, bias, cover, width in rows:
        print(f"| {shape} | {name} | {n} | {truth_mean:+.3f} | {bias:+.3f} | {bias / truth_mean:+.1%} | "
              f"{cover:.1%} | {width:.3f} |")


if __name__ == "__main__":
    main()
