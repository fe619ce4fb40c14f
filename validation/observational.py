"""Observational worlds: covariates that drive both who is trained and the untreated trend.

Each run draws, with NumPy, a panel of units over a few periods (months) in which some units are
trained at the start of the first post period, and runs the product's estimators on it, by name
from :data:`training_roi.isolate.ESTIMATORS` (every registered design with a comparison group by
default, so an estimator registered later — ``drdid`` — is picked up without editing this file;
a name that is not registered is skipped with a note). It reports, per world and estimator, the
bias, RMSE, 95% interval coverage, how often the interval excludes zero (in the no-effect world:
false crediting), how often the estimator warned, and how often it warned of poor overlap (in the
poor-overlap world it should).

The model, for unit *i* in period *t* = 0 … pre + post − 1, training starting at period ``pre``:

* two covariates, constant within a unit: ``segment`` ~ Bernoulli(``segment_share``) and
  ``size`` ~ N(0, 1), independent;
* who is trained: logit P(D = 1 | X) = logit(``enrol[segment]``) + ``select_size`` · size;
* untreated outcome: Y(0) = level_i + λ_t + (``trend_segment`` · segment + ``trend_size`` · size) · t
  + ε, with level_i = ``level_segment`` · segment + ``level_size`` · size + N(0, ``unit_sd``²),
  λ_t ~ N(0, ``shock_sd``²) a shock common to every unit, ε ~ N(0, ``noise``²);
* treated outcome in every post period: Y(1) = Y(0) + ``effect`` + ``effect_size`` · size (a
  constant effect, or one that varies with size: then the average effect on the trained differs
  from the average over everyone, since size also drives training).

The truth of a draw is its sample ATT: the mean of effect + effect_size · size over the trained
units, exactly. Covariate *levels* are removed by any difference-in-differences; covariate
*trends* are not: without conditioning on X, a DiD comparing the ``w`` last pre periods with the
``post`` periods is off by (E[b | D = 1] − E[b | D = 0]) · (w + post) / 2, where b = trend_segment ·
segment + trend_size · size is a unit's own trend per period (:func:`predicted_plain_bias`; the
product's two-way fixed effects uses w = min(pre, post)). Given X, trends are parallel, so a
design that conditions on X correctly is unbiased.

    python validation/observational.py --seeds 50
    python validation/observational.py --seeds 50 --worlds poor_overlap null --estimators twfe drdid
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import polars as pl

from training_roi.isolate import ESTIMATORS, compare_methods, registered
from training_roi.measure.panels import UnitPanel

COVARIATES = ("segment", "size")
OVERLAP_WORDS = r"overlap|no comparable|common support|extreme propensit"
"""What a warning about poor overlap says, in the words the estimators use (a regular expression)."""


@dataclass(frozen=True)
class World:
    """The parameters of one observational world (see the module's docstring for the model)."""

    units: int = 1000
    pre: int = 3  # periods before training (2 or 3 in the shipped worlds)
    post: int = 2  # periods from training on (1 to 3)
    segment_share: float = 0.5  # P(segment = 1)
    enrol: tuple[float, float] = (0.2, 0.8)  # P(trained) in segment 0 and 1, at size 0
    select_size: float = 1.0  # log-odds of being trained per unit of size
    trend_segment: float = 0.3  # untreated outcome's extra change per period in segment 1
    trend_size: float = 0.1  # … per period and unit of size
    level_segment: float = 1.0  # level differences, which any DiD removes
    level_size: float = 0.5
    effect: float = 1.0  # effect of training in every post period at size 0
    effect_size: float = 0.0  # + this × size (0: a constant effect)
    unit_sd: float = 1.0  # spread of the units' own levels
    shock_sd: float = 0.5  # spread of the period shocks every unit shares
    noise: float = 1.0  # spread of a unit-period's own noise

    def __post_init__(self) -> None:
        if self.units < 4 or self.pre < 1 or self.post < 1:
            raise ValueError(f"need at least 4 units, 1 pre and 1 post period (got {self.units}, {self.pre}, "
                             f"{self.post})")
        if not all(0 < p < 1 for p in (*self.enrol, self.segment_share)):
            raise ValueError("enrol and segment_share are probabilities strictly between 0 and 1")


WORLDS: dict[str, World] = {
    "parallel": World(trend_segment=0.0, trend_size=0.0),
    "covariate_trends": World(),
    "heterogeneous": World(effect_size=0.5),
    "poor_overlap": World(enrol=(0.02, 0.98), select_size=2.0),
    "null": World(effect=0.0),
}
"""The shipped worlds: covariates drive selection everywhere, trends too except in ``parallel``."""


@dataclass(frozen=True)
class Draw:
    """One simulated panel and what is known about it exactly."""

    panel: UnitPanel
    att: float  # mean effect over the trained units of this draw
    trained: int
    comparison: int
    propensity: np.ndarray  # per unit, in the order of the unit ids: the true P(trained | covariates)


def draw_panel(world: World, seed: int) -> Draw:
    """Draw one unit × period panel of ``world`` with ``seed``; the panel's covariates are segment and size.

    Periods are the first days of months from January 2024; trained units' ``treated_at`` is the
    first day of period ``pre``. A draw in which nobody, or everybody, is trained is redrawn from
    the next random numbers of the same seed (it has no ATT or no comparison).
    """
    rng = np.random.default_rng(seed)
    n, periods = world.units, world.pre + world.post
    while True:
        segment = (rng.random(n) < world.segment_share).astype(np.float64)
        size = rng.standard_normal(n)
        base = np.log(np.array(world.enrol) / (1 - np.array(world.enrol)))[segment.astype(np.int64)]
        propensity = 1 / (1 + np.exp(-(base + world.select_size * size)))
        trained = rng.random(n) < propensity
        if 0 < trained.sum() < n:
            break
    t = np.arange(periods, dtype=np.float64)
    level = world.level_segment * segment + world.level_size * size + rng.normal(0, world.unit_sd, n)
    own_trend = world.trend_segment * segment + world.trend_size * size
    shock = rng.normal(0, world.shock_sd, periods)
    y0 = level[:, None] + shock[None, :] + own_trend[:, None] * t[None, :] + rng.normal(0, world.noise, (n, periods))
    effect = world.effect + world.effect_size * size
    after = (t >= world.pre)[None, :] & trained[:, None]
    y = y0 + np.where(after, effect[:, None], 0.0)
    months = [date(2024 + k // 12, k % 12 + 1, 1) for k in range(periods)]
    start = months[world.pre]
    frame = pl.DataFrame({
        "unit": np.repeat([f"u{i:0{len(str(n))}d}" for i in range(n)], periods),  # sorted as drawn
        "period": months * n,
        "treated_at": [start if d else None for d in trained.tolist() for _ in range(periods)],
        "y": y.ravel(),
        "segment": np.repeat(segment, periods),
        "size": np.repeat(size, periods),
    }, schema={"unit": pl.String, "period": pl.Date, "treated_at": pl.Date, "y": pl.Float64,
               "segment": pl.Float64, "size": pl.Float64})
    panel = UnitPanel(frame=frame, outcome="y", numerator="y", covariates=COVARIATES)
    return Draw(panel=panel, att=float(effect[trained].mean()), trained=int(trained.sum()),
                comparison=int((~trained).sum()), propensity=propensity)


def effective_comparisons(draw: Draw) -> float:
    """The comparison units' effective number under the true ATT weights p / (1 − p): (Σ w)² / Σ w².

    What overlap leaves of the comparison group once it is reweighted to look like the trained
    units: a few dozen out of hundreds means that a handful of untrained units stand in for most
    trained ones.
    """
    untrained = draw.panel.units["treated_at"].is_null().to_numpy()
    p = draw.propensity[untrained]
    w = p / (1 - p)
    return float(w.sum() ** 2 / (w**2).sum())


def _conditional_means(world: World, g: np.ndarray) -> tuple[float, float]:
    """E[g(segment, size) | D = 1] and E[g | D = 0] in the population, by Gauss–Hermite quadrature over size.

    ``g`` holds g's values at segment 0 and 1 (rows) and the quadrature nodes (columns).
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()  # size ~ N(0, 1)
    seg_p = np.array([1 - world.segment_share, world.segment_share])
    base = np.log(np.array(world.enrol) / (1 - np.array(world.enrol)))
    p = 1 / (1 + np.exp(-(base[:, None] + world.select_size * nodes[None, :])))
    mass = seg_p[:, None] * weights[None, :]
    treated, untreated = mass * p, mass * (1 - p)
    return float((treated * g).sum() / treated.sum()), float((untreated * g).sum() / untreated.sum())


def predicted_plain_bias(world: World, pre_window: int | None = None) -> float:
    """The population bias of a difference-in-differences without covariates in ``world``.

    It compares the trained and untrained units' change from the last ``pre_window`` pre periods
    (default: the product's two-way fixed effects window, min(pre, post)) to the ``post`` periods.
    A unit's untreated outcome rises by its own b = trend_segment · segment + trend_size · size per
    period, so each group's change is its mean b times the distance between the windows' mean
    periods, (w + post) / 2 with w = ``pre_window``; the levels cancel, the common shocks too.
    """
    w = min(world.pre, world.post) if pre_window is None else min(pre_window, world.pre)
    nodes = np.polynomial.hermite_e.hermegauss(80)[0]
    b = world.trend_segment * np.array([0.0, 1.0])[:, None] + world.trend_size * nodes[None, :]
    on, off = _conditional_means(world, b)
    return (on - off) * (w + world.post) / 2


def population_att(world: World) -> float:
    """The expected ATT: effect + effect_size · E[size | D = 1]."""
    nodes = np.polynomial.hermite_e.hermegauss(80)[0]
    on, _ = _conditional_means(world, np.broadcast_to(nodes, (2, nodes.size)))
    return world.effect + world.effect_size * on


def default_estimators() -> tuple[str, ...]:
    """Every registered estimator with a comparison group, in the registry's order."""
    return tuple(n for n in registered() if ESTIMATORS[n].needs_comparison)


@dataclass(frozen=True)
class Outcome:
    """One estimator on one draw: its estimate and interval, or why it did not run."""

    estimate: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    warnings: tuple[str, ...] = ()
    skipped: str = ""
    method: str = ""
    """For the recommendation: the design it led with."""


def run_estimators(draw: Draw, names: tuple[str, ...], *, post: int, replicates: int, seed: int) -> dict[str, Outcome]:
    """Run each registered estimator of ``names`` on the draw side by side, and the one the product recommends.

    ``post`` is the estimators' ``post_months``: the post periods, and for the matching designs
    the pre-period months they match on. A name not registered is left out. ``recommended`` is
    the design :func:`~training_roi.isolate.compare_methods` leads with (its name in ``method``).
    """
    known = tuple(n for n in names if n in ESTIMATORS)
    c = compare_methods(draw.panel, post_months=post, replicates=replicates, seed=seed, refutations=False,
                        methods=known)
    out: dict[str, Outcome] = {}
    for r in c.results:
        e = r.effect
        out[r.method] = (Outcome(skipped=r.not_applicable or "not applicable") if e is None
                         else Outcome(e.estimate, e.ci_low, e.ci_high, warnings=e.warnings))
    if c.recommended is not None:
        out["recommended"] = replace(out[c.recommended], method=c.recommended)
    return out


@dataclass(frozen=True)
class Summary:
    """An estimator's record over the draws of one world."""

    runs: int
    skipped: int
    mean_truth: float
    bias: float
    rmse: float
    coverage: float
    excludes_zero: float
    warned: float
    warned_overlap: float
    width: float


def summarise(runs: list[tuple[float, Outcome]], overlap: str = OVERLAP_WORDS) -> Summary:
    """Bias, RMSE, coverage, … of one estimator over ``runs`` of (truth, outcome); skipped runs are counted apart.

    ``warned`` is the share of runs with any warning, ``warned_overlap`` with one that matches the
    regular expression ``overlap`` (case-insensitive).
    """
    done = [(t, o) for t, o in runs if not o.skipped and math.isfinite(o.estimate)]
    if not done:
        return Summary(0, len(runs), *[math.nan] * 8)
    pattern = re.compile(overlap, re.IGNORECASE)
    truth = np.array([t for t, _ in done])
    est = np.array([o.estimate for _, o in done])
    lo, hi = np.array([o.ci_low for _, o in done]), np.array([o.ci_high for _, o in done])
    return Summary(
        runs=len(done), skipped=len(runs) - len(done), mean_truth=float(truth.mean()),
        bias=float((est - truth).mean()), rmse=float(np.sqrt(((est - truth) ** 2).mean())),
        coverage=float(((lo <= truth) & (truth <= hi)).mean()), excludes_zero=float(((lo > 0) | (hi < 0)).mean()),
        warned=float(np.mean([bool(o.warnings) for _, o in done])),
        warned_overlap=float(np.mean([any(pattern.search(w) for w in o.warnings) for _, o in done])),
        width=float((hi - lo).mean()),
    )


def _world(name: str, args: argparse.Namespace) -> World:
    """The named world with the command line's size and periods, where given."""
    changes = {k: getattr(args, k) for k in ("units", "pre", "post") if getattr(args, k) is not None}
    return replace(WORLDS[name], **changes)


def main() -> None:
    """Run the seeds in each world and print one Markdown table per world."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--worlds", nargs="*", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--estimators", nargs="*", default=None,
                        help="registered names (default: every design with a comparison group)")
    parser.add_argument("--units", type=int, default=None)
    parser.add_argument("--pre", type=int, default=None, help="periods before training")
    parser.add_argument("--post", type=int, default=None, help="periods from training on")
    parser.add_argument("--replicates", type=int, default=199, help="bootstrap replicates of the designs that draw")
    parser.add_argument("--overlap-words", default=OVERLAP_WORDS,
                        help="regular expression that marks a warning about overlap (column 'warned of overlap')")
    args = parser.parse_args()
    names = tuple(args.estimators) if args.estimators is not None else default_estimators()
    missing = [n for n in names if n not in ESTIMATORS]
    if missing:
        print(f"not registered, skipped: {', '.join(missing)}", file=sys.stderr)
    for world_name in args.worlds:
        world = _world(world_name, args)
        runs: dict[str, list[tuple[float, Outcome]]] = {n: [] for n in (*names, "recommended") if n in ESTIMATORS
                                                        or n == "recommended"}
        chosen: dict[str, int] = {}
        ess = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            started = time.perf_counter()
            draw = draw_panel(world, seed)
            ess.append((effective_comparisons(draw), draw.comparison))
            outcomes = run_estimators(draw, names, post=world.post, replicates=args.replicates, seed=seed)
            for name, o in outcomes.items():
                runs[name].append((draw.att, o))
            pick = outcomes.get("recommended", Outcome()).method or "none"
            chosen[pick] = chosen.get(pick, 0) + 1
            line = "  ".join(f"{n} {'-' if o.skipped else f'{o.estimate:+.3f}'}" for n, o in outcomes.items())
            took = time.perf_counter() - started
            print(f"{world_name:16} seed {seed:3}: ATT {draw.att:+.3f}  {line}  ({took:.1f} s)", file=sys.stderr,
                  flush=True)
        print(f"\n**{world_name}** ({world.units} units, {world.pre} pre / {world.post} post periods; population "
              f"ATT {population_att(world):+.3f}; predicted bias of a DiD without covariates "
              f"{predicted_plain_bias(world):+.3f}; comparison units' effective number under the true ATT weights "
              f"{np.mean([e for e, _ in ess]):.0f} of {np.mean([c for _, c in ess]):.0f})\n")
        print("| estimator | runs | skipped | mean truth | bias | RMSE | 95% coverage | interval excludes 0 | "
              "warned | warned of overlap | mean interval width |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, rs in runs.items():
            s = summarise(rs, args.overlap_words)
            print(f"| {name} | {s.runs} | {s.skipped} | {s.mean_truth:+.3f} | {s.bias:+.3f} | {s.rmse:.3f} | "
                  f"{s.coverage:.0%} | {s.excludes_zero:.0%} | {s.warned:.0%} | {s.warned_overlap:.0%} | "
                  f"{s.width:.3f} |", flush=True)
        print("\nrecommended: " + ", ".join(f"{k} {v}×" for k, v in sorted(chosen.items())), flush=True)


if __name__ == "__main__":
    main()
