"""Customer-side risk in words and rows: the report's section, the console's lines and churn_risk.csv.

Every output names the strength of the trained-against-untrained evidence (always an association:
who completes the training is not drawn at random), says that the drivers are a local ablation (what the probability
would be with one feature at its median), not causes, and gives the model's out-of-time check
beside its baseline's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from training_roi._format import money, points, probability
from training_roi.evaluation import Evaluation
from training_roi.present.spreadsheet import write_safe_csv

__all__ = ["check_rows", "churn_context", "churn_lines", "group_line", "reliability_rows", "risk_rows",
           "write_churn_risk"]

_SHOWN = 20
"""Accounts the report shows (churn_risk.csv holds every open renewal)."""
_MODELS = {"boosting": "calibrated boosted stumps", "logistic": "logistic regression"}


def _auc(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def check_rows(check: dict[str, Any], chosen: str) -> list[dict[str, str]]:
    """The out-of-time check (result.json's ``churn.check``): one row per model and the churn rate, formatted."""
    def row(key: str, label: str, kind: str) -> dict[str, str]:
        c = check.get(key) or {}
        return {"model": label, "brier": f"{float(c.get('brier') or 0.0):.4f}", "auc": _auc(c.get("auc")),
                "scores": "yes" if chosen == kind else ""}

    return [row("model", _MODELS["boosting"], "boosting"),
            row("baseline", f"{_MODELS['logistic']} (baseline)", "logistic"),
            {"model": "the churn rate for everyone", "brier": f"{float(check.get('brier_prevalence') or 0.0):.4f}",
             "auc": "0.500", "scores": ""}]


def reliability_rows(check: dict[str, Any], chosen: str) -> list[dict[str, str]]:
    """The check's reliability curve of the scoring model's kind: predicted against observed churn per bin.

    The check's model, fitted on the earlier renewals; the one that scores is refitted on them all.
    """
    scoring = check.get("model" if chosen == "boosting" else "baseline") or {}
    return [{"predicted": probability(b.get("predicted")), "observed": probability(b.get("observed")),
             "renewals": f"{int(b.get('count') or 0):,}"} for b in scoring.get("reliability") or []]


def risk_rows(ev: Evaluation) -> list[dict[str, str]]:
    """The report's rows: the open renewals most likely to churn, formatted."""
    r = ev.churn
    if r is None:
        return []
    return [{"account": row["account_name"], "owner": row["owner_id"] or "", "due": str(row["due"] or ""),
             "amount": money(row["amount"]) if row["amount"] is not None else "—",
             "probability": probability(row["probability"]), "drivers": row["drivers"],
             "trained": "yes" if row["trained"] else "no"}
            for row in r.accounts.head(_SHOWN).iter_rows(named=True)]


def group_line(g: dict[str, Any]) -> str:
    """One group of trained against untrained (result.json's ``churn.trained_vs_untrained.groups``) in words."""
    observed = (f"{probability(g['observed'])} churned ({probability(g['low'])} to {probability(g['high'])}) of "
                f"{g['decided']:,} decided" if g.get("observed") is not None else "no decided renewal")
    predicted = (f", {probability(g['predicted'])} predicted for {g['open']:,} open"
                 if g.get("predicted") is not None else "")
    return f"{g['group']}: {observed}{predicted}"


def churn_lines(ev: Evaluation) -> list[str]:
    """The console's lines: the check against the baseline, the riskiest account, trained against untrained."""
    r = ev.churn
    if r is None:
        return [ev.churn_basis[:1].upper() + ev.churn_basis[1:]] if ev.churn_basis else []
    f = r.fit
    lines = [f"Churn risk (scored by {_MODELS[f.chosen]}): out of time on {f.test:,} later renewals, Brier "
             f"{f.model.brier:.4f} and AUC {_auc(f.model.auc)} for the calibrated stumps, {f.baseline.brier:.4f} and "
             f"{_auc(f.baseline.auc)} for the logistic baseline ({f.brier_prevalence:.4f} for the churn rate alone)"]
    if r.accounts.height:
        top = r.accounts.row(0, named=True)
        lines.append(f"  {r.accounts.height:,} open renewals; most at risk: {top['account_name']} "
                     f"{probability(top['probability'])} ({top['drivers'] or 'no driver stands out'})")
    if r.difference is not None:
        lines.append(f"  Trained against untrained accounts ({r.evidence}): {points(r.difference)} churn "
                     f"({points(r.difference_low or 0.0)} to {points(r.difference_high or 0.0)}); "
                     + "; ".join(group_line(vars(g)) for g in r.groups))
    lines.extend(f"  {w[:1].upper() + w[1:]}." for w in r.warnings)
    return lines


def churn_context(ev: Evaluation) -> dict[str, Any]:
    """The report template's churn figures (empty lists when the study asked for none)."""
    r = ev.churn
    return {"churn_lines": churn_lines(ev), "churn_rows": risk_rows(ev),
            "churn_checks": check_rows(r.check_document(), r.fit.chosen) if r is not None else [],
            "churn_reliability": reliability_rows(r.check_document(), r.fit.chosen) if r is not None else []}


def write_churn_risk(ev: Evaluation, out_dir: Path) -> Path | None:
    """Write ``churn_risk.csv`` (every open renewal's risk and drivers) into ``out_dir``; None when not asked."""
    r = ev.churn
    if r is None:
        return None
    table = r.accounts.with_columns(pl.col("probability").round(6), pl.lit(r.fit.chosen).alias("model"))
    return write_safe_csv(table, out_dir, "churn_risk.csv")
