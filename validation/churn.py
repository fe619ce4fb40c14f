"""Calibration check: the churn model's probabilities against the simulator's true churn probabilities.

Scenario ``customer``: a renewal is lost with a probability set by the account's engagement (which
the CRM does not hold) and size, its support cases in the 180 days before the renewal opened, its
age, and training (truth.json ``model.churn_drivers``); truth_opportunities.parquet holds every
renewal's true churn probability. For each seed, simulate an org, ingest and link it, and answer a
study with ``insight.churn: true`` as ``training-roi report`` does. Out of time (the later 30% of
decided renewals by due date, the models fitted on the earlier 70%), compare the Brier score and
AUC of the calibrated boosted stumps and of the logistic baseline with those of the true
probabilities themselves (the best any model could do) and of the churn rate for everyone (the
worst worth having); then the reliability of each against the truth: by fifths of predicted risk,
the largest gap between the mean prediction and the mean true probability. On the renewals still
open, the scoring model's root mean square distance to the true probabilities. Prints one line per
run and a summary table for validation/README.md.

    python validation/churn.py --seeds 5 --reps 300 --workers 2
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from pool import orgs_parser, run_all, scenario_jobs, simulated_org
from sklearn.metrics import brier_score_loss, roc_auc_score

from training_roi import Evaluation, Study, evaluate
from training_roi.measure.churn import renewal_features


def _worst_fifth(predicted: np.ndarray, true: np.ndarray) -> float:
    """The largest gap, over fifths of predicted risk, between mean prediction and mean true probability."""
    order = np.argsort(predicted, kind="stable")
    return float(max(abs(predicted[part].mean() - true[part].mean()) for part in np.array_split(order, 5)))


def one_run(seed: int, reps: int, months: int) -> dict[str, object]:
    """One org: the out-of-time check of both models and of the truth, and the open renewals' distance to it."""
    with tempfile.TemporaryDirectory() as tmp:
        folder, con, truth = simulated_org(Path(tmp), scenario="customer", reps=reps, months=months, seed=seed)
        renewals = pl.read_parquet(folder / "truth_opportunities.parquet").filter(pl.col("type") == "Renewal")
        study = Study.model_validate({
            "name": "churn", "program": {"name": truth["program"]["name"],
                                         "activities": [truth["program"]["course_activity_id"]]},
            "population": {"unit": "account"}, "isolation": {"seed": seed}, "attribution": {"enabled": False},
            "forecast": {"enabled": False}, "insight": {"churn": True}})
        started = time.perf_counter()
        answer = evaluate(con, study)
        seconds = time.perf_counter() - started
        decided = renewal_features(con).filter(pl.col("decided"))
        con.disconnect()
    assert isinstance(answer, Evaluation) and answer.churn is not None, answer.churn_basis
    r = answer.churn
    f = r.fit
    late = decided[f.test_rows].join(renewals, left_on="renewal_id", right_on="opportunity_id", how="left")
    y = late["churned"].to_numpy().astype(int)
    p = late["churn_probability"].to_numpy()
    rate = np.full(y.size, f.churn_rate_train)
    scored = r.accounts.join(renewals, left_on="renewal_id", right_on="opportunity_id", how="left")
    gap = scored["probability"].to_numpy() - scored["churn_probability"].to_numpy()
    return {
        "seed": seed, "decided": f.train + f.test, "test": f.test, "open": r.accounts.height,
        "brier_model": f.model.brier, "brier_baseline": f.baseline.brier,
        "brier_truth": float(brier_score_loss(y, p)), "brier_rate": float(brier_score_loss(y, rate)),
        "auc_model": f.model.auc, "auc_baseline": f.baseline.auc, "auc_truth": float(roc_auc_score(y, p)),
        "fifth_gap_model": _worst_fifth(f.test_model, p), "fifth_gap_baseline": _worst_fifth(f.test_baseline, p),
        "chosen": f.chosen, "open_rmse": float(np.sqrt(np.mean(gap**2))) if gap.size else None,
        "trained_minus_untrained": r.difference, "evaluate_seconds": seconds,
    }


def main() -> None:
    """Run the seeds, print each run and the summary table."""
    parser = orgs_parser(__doc__, scenarios=("customer",), reps=300, months=24)
    args = parser.parse_args()
    jobs = [(seed, args.reps, args.months) for _, seed in scenario_jobs(args)]
    rows = run_all(one_run, jobs, workers=args.workers, out=args.out, line=json.dumps)
    frame = pl.DataFrame(rows)
    print(f"\n{frame.height} orgs of {args.reps} account managers, {args.months} months; out of time (later 30%):\n")
    print("| figure | calibrated stumps | logistic baseline | true probabilities | churn rate for all |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| Brier score (mean) | {frame['brier_model'].mean():.4f} | {frame['brier_baseline'].mean():.4f} | "
          f"{frame['brier_truth'].mean():.4f} | {frame['brier_rate'].mean():.4f} |")
    print(f"| AUC (mean) | {frame['auc_model'].mean():.3f} | {frame['auc_baseline'].mean():.3f} | "
          f"{frame['auc_truth'].mean():.3f} | 0.500 |")
    print(f"| worst fifth: mean predicted − mean true (mean over orgs) | {frame['fifth_gap_model'].mean():.3f} | "
          f"{frame['fifth_gap_baseline'].mean():.3f} | 0 | |")
    wins = int((frame["brier_model"] <= frame["brier_baseline"]).sum())
    print(f"\nThe stumps had the lower Brier score in {wins} of {frame.height} orgs; open renewals' RMS distance "
          f"to the truth (scoring model): {frame['open_rmse'].mean():.3f}; decided renewals per org "
          f"{frame['decided'].mean():,.0f}.")


if __name__ == "__main__":
    main()
