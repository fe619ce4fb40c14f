"""The recommended next lesson's simulated value, against random and most-popular recommendations.

Scenario ``knowledge_gaps``: every drill teaches one of twelve skills, reps' latent levels are
measured item by item by a skills check before the drills, and a rep's first lesson of a skill
closes their gap in it — worth something in four skills and nothing in eight. For each seed,
simulate an org, ingest and link it, answer a study with ``insight.next_lesson`` (the simulator's
``skills.csv`` as its skill map) as ``training-roi report`` does, and score three policies for
every rep the product recommends to, by the truth's win-rate gain of the lesson each recommends
(``truth_skills.parquet``: a lesson of a skill the rep has already covered is worth nothing):

* **recommended**: the product's first recommendation;
* **random**: a drill of a skill drawn at random among those the rep has not yet taken a lesson in
  (and the product could recommend: the skills with a line);
* **most popular**: the most-taken drill of such a skill (both baselines skip the skills the rep
  has covered, as the product does: a drill drawn from all those not done often lands on a covered
  skill, worth nothing by definition, and would flatter the comparison);
* **best possible**: the skill with the largest true gain (what an oracle would recommend).

Prints one line per run (each policy's mean value per rep, in win-rate points, the gap between the
recommended and each baseline with its 95% interval over reps, and how many first lessons stand out
against the average lesson, and of them how many in a skill that does not matter) and a summary
for validation/README.md.

    python validation/next_lesson.py --seeds 5 --reps 3000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from pool import simulated_org

from training_roi import Evaluation, Study, evaluate


def policy_values(recommendations: pl.DataFrame, truth_skills: pl.DataFrame, skill_map: dict[str, str],
                  done: pl.DataFrame, seed: int, skills: list[str] | None = None) -> pl.DataFrame:
    """Per rep recommended to: the true win-rate gain of each policy's lesson.

    ``recommendations`` (``unit``, ``rank``, ``skill``), ``truth_skills`` (the simulator's
    ``truth_skills.parquet``), ``skill_map`` (drill id → skill), ``done`` (``unit``, ``lesson``: the
    drills each rep completed, from the warehouse) and ``skills`` (those the product could recommend;
    all by default). Columns: ``unit``, ``recommended``, ``random``, ``popular``, ``best``.
    """
    rng = np.random.default_rng(seed)
    drills = sorted(a for a, s in skill_map.items() if "/lesson/" in a)
    takers = done.group_by("lesson").agg(n=pl.len())
    order = (pl.DataFrame({"lesson": drills}).join(takers, on="lesson", how="left").fill_null(0)
             .sort(["n", "lesson"], descending=[True, False])["lesson"].to_list())
    taken: dict[str, set[str]] = {}
    for unit, lesson in done.select("unit", "lesson").iter_rows():
        taken.setdefault(unit, set()).add(lesson)
    gain = {(u, s): (g if c is None else 0.0) for u, s, g, c in
            truth_skills.select("user_id", "skill", "gain_win_rate", "covered_on").iter_rows()}
    best = truth_skills.filter(pl.col("covered_on").is_null()).group_by("user_id").agg(best=pl.col("gain_win_rate")
                                                                                       .max())
    best_of = dict(best.iter_rows())
    allowed = set(skills) if skills is not None else {skill_map[d] for d in drills}
    rows = []
    for unit, skill in recommendations.filter(pl.col("rank") == 1).select("unit", "skill").iter_rows():
        mine = taken.get(unit, set())
        covered = {skill_map[d] for d in mine if d in skill_map}
        open_ = sorted(allowed - covered)
        if not open_:
            continue
        pick = open_[int(rng.integers(len(open_)))]
        popular = next(skill_map[d] for d in order if skill_map[d] in open_)
        rows.append({"unit": unit, "recommended": gain.get((unit, skill), 0.0), "random": gain.get((unit, pick), 0.0),
                     "popular": gain.get((unit, popular), 0.0), "best": best_of.get(unit, 0.0)})
    return pl.DataFrame(rows)


def _gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean paired difference a − b and its 95% interval over reps."""
    d = a - b
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def one_run(seed: int, reps: int, months: int) -> dict[str, float]:
    """One org: each policy's mean value per rep, and the recommended policy's gaps to the baselines."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, con, truth = simulated_org(Path(tmp), scenario="knowledge_gaps", reps=reps, months=months, seed=seed)
        skill_map = dict(pl.read_csv(folder / "skills.csv").iter_rows())
        truth_skills = pl.read_parquet(folder / "truth_skills.parquet")
        study = Study.model_validate({
            "name": "drills", "program": {"name": truth["program"]["name"], "completion": "lessons",
                                          "activities": [truth["program"]["course_activity_id"]]},
            "isolation": {"seed": seed, "bootstrap_replicates": 199}, "attribution": {"enabled": False},
            "forecast": {"enabled": False}, "insight": {"next_lesson": {"skills": skill_map}}})
        answer = evaluate(con, study)
        from training_roi.measure.lessons import lesson_dates

        done = lesson_dates(con, [truth["program"]["course_activity_id"]])
        con.disconnect()
    assert isinstance(answer, Evaluation) and answer.next_lesson is not None, answer.next_lesson_basis
    values = policy_values(answer.next_lesson.recommendations, truth_skills, skill_map, done, seed,
                           list(answer.next_lesson.effects.fitted))
    v = {c: values[c].to_numpy() for c in ("recommended", "random", "popular", "best")}
    first = answer.next_lesson.recommendations.filter(pl.col("rank") == 1)
    standing = first.filter(pl.col("established"))
    real = set(truth["knowledge_gaps"]["effective"])
    out = {c: float(x.mean()) for c, x in v.items()} | {
        "reps": values.height, "stand_out": standing.height / max(first.height, 1),
        "stand_out_false": int((~standing["skill"].is_in(list(real))).sum())}
    for base in ("random", "popular"):
        out[f"gap_{base}"], out[f"gap_{base}_low"], out[f"gap_{base}_high"] = _gap(v["recommended"], v[base])
    return out


def main() -> None:
    """Run the seeds and print the lines and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    runs = []
    pts = 100.0
    for seed in range(1, args.seeds + 1):
        t0 = time.perf_counter()
        r = one_run(seed, args.reps, args.months)
        runs.append(r)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s; {r['reps']:,} reps; value per rep in win-rate points: "
              f"recommended {r['recommended'] * pts:.2f}, random {r['random'] * pts:.2f}, most popular "
              f"{r['popular'] * pts:.2f}, best possible {r['best'] * pts:.2f}; recommended − random "
              f"{r['gap_random'] * pts:+.2f} ({r['gap_random_low'] * pts:+.2f} to {r['gap_random_high'] * pts:+.2f}), "
              f"recommended − most popular {r['gap_popular'] * pts:+.2f} ({r['gap_popular_low'] * pts:+.2f} to "
              f"{r['gap_popular_high'] * pts:+.2f}); first lessons that stand out {r['stand_out']:.1%}, of a skill "
              f"that does not matter {r['stand_out_false']}", flush=True)
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    beat = {b: sum(r[f"gap_{b}_low"] > 0 for r in runs) for b in ("random", "popular")}
    print(f"\n{args.seeds} orgs of {args.reps:,} reps × {args.months} months: value of the first recommendation "
          f"{mean['recommended'] * pts:.2f} points of win rate per rep against {mean['random'] * pts:.2f} (random) and "
          f"{mean['popular'] * pts:.2f} (most popular); the best possible {mean['best'] * pts:.2f}. The recommended "
          f"policy beat random with an interval above zero in {beat['random']} of {args.seeds} orgs and most popular "
          f"in {beat['popular']} of {args.seeds}. First lessons that stand out: {mean['stand_out']:.1%} of reps; of a "
          f"skill that does not matter: {sum(r['stand_out_false'] for r in runs)} in all.")


if __name__ == "__main__":
    main()
