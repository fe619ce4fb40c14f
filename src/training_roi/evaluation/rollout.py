"""A CRM roll-out study answered: what the go-live changed, what that is worth, and its ROI.

The "program" is a CRM implementation with a go-live date, org-wide or staged by team. Each KPI
the study names (from the catalogue: lead conversion, first-response time, tasks on time, …) is
measured per rep and month; a rep is treated from their team's go-live. The effect is isolated
by the teams that went live later (the staggered estimator, with not-yet-live teams as the
comparison) when the go-live was staged, else by each rep's own pre-go-live trend projected
forward (the trend line). Benefits: the conversion lift × the leads the live teams received ×
the value of a conversion × margin, plus the study's monetisation rules (which may name any
isolated KPI, e.g. hours of response time saved); costs: the roll-out's fully loaded cost
(licences, implementation, training, support). ROI % = (benefits − costs) / costs × 100.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from ibis.backends import BaseBackend

from training_roi._format import money, percent
from training_roi.evaluation.costs import study_costs
from training_roi.isolate import Effect, NotApplicable, UnitPanel, estimate_staggered, estimate_trend
from training_roi.measure import CATALOGUE, assigned, compute, rep_attributes
from training_roi.study import Study, StudyError, StudyPlan
from training_roi.value import Benefit, CostBreakdown, ROIFigures, monetise, roi

__all__ = ["ROLLOUT_SCHEMA", "RolloutEvaluation", "RolloutKpi", "evaluate_rollout"]

ROLLOUT_SCHEMA = "training-roi/rollout/1"


@dataclass(frozen=True)
class RolloutKpi:
    """One KPI's change at go-live: levels before and after, and the isolated effect."""

    kpi: str
    label: str
    unit: str
    higher_is_better: bool
    before: float | None
    """Pooled over live reps' months before their go-live."""
    after: float | None
    """Pooled over their months from go-live on."""
    effect: Effect | None
    not_applicable: str | None
    post_volume: float
    """The denominator after go-live (leads, answered leads, tasks …): what a per-unit effect scales by."""

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"kpi": self.kpi, "label": self.label, "unit": self.unit, "higher_is_better": self.higher_is_better,
                "before": self.before, "after": self.after, "post_volume": self.post_volume,
                "effect": self.effect.asdict() if self.effect else None, "not_applicable": self.not_applicable}


@dataclass(frozen=True)
class RolloutEvaluation:
    """The roll-out's answer: go-live dates, KPI effects, benefits, costs and ROI."""

    study: Study
    method: str
    go_live: dict[str, date]
    """Team (manager id) → go-live date; ``*`` for an org-wide go-live."""
    reps: int
    kpis: tuple[RolloutKpi, ...]
    benefits: tuple[Benefit, ...]
    costs: CostBreakdown
    figures: ROIFigures
    roi_interval: tuple[float, float] | None
    monthly: pl.DataFrame
    """The KPIs org-wide by month (for the trend charts), with month-over-month and year-over-year changes."""
    warnings: tuple[str, ...]
    inference: str = ""
    """How the intervals were computed and why (by team, and the wild cluster bootstrap when teams are few)."""

    def summary(self) -> str:
        """The roll-out's answer in a few lines: each KPI's isolated change, benefit, cost and ROI."""
        lines = [f"{self.study.name} (study {self.study.hash}): CRM roll-out, {self.method}, {self.reps:,} reps"]
        if self.inference:
            lines.append(f"  intervals: {self.inference}")
        for k in self.kpis:
            if k.effect is None:
                lines.append(f"  {k.label}: not established ({k.not_applicable})")
                continue
            e = k.effect
            lines.append(f"  {k.label}: {e.estimate:+.4g} [{e.confidence:.0%}: {e.ci_low:+.4g} to {e.ci_high:+.4g}]")
        iv = self.roi_interval
        lines.append(f"  benefit {money(sum((b.amount for b in self.benefits), Decimal(0)))}, fully loaded cost "
                     f"{money(self.costs.total)}, ROI {percent(self.figures.roi_pct)}"
                     + (f" [{percent(iv[0])} to {percent(iv[1])}]" if iv else "")
                     + f" at {self.study.value.gross_margin:.1%} gross margin")
        lines += [f"  warning: {w}" for w in self.warnings[:3]]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"RolloutEvaluation(study={self.study.name!r}, method={self.method!r}, roi_pct={self.figures.roi_pct})"

    def asdict(self) -> dict[str, Any]:
        """The result document (schema :data:`ROLLOUT_SCHEMA`)."""
        return {
            "schema": ROLLOUT_SCHEMA,
            "study": {"name": self.study.name, "hash": self.study.hash, "settings": self.study.model_dump(mode="json")},
            "method": self.method, "go_live": {k: v.isoformat() for k, v in sorted(self.go_live.items())},
            "reps": self.reps, "kpis": [k.asdict() for k in self.kpis],
            "benefits": [b.asdict() for b in self.benefits], "costs": self.costs.asdict(),
            "roi": self.figures.asdict(), "roi_interval": list(self.roi_interval) if self.roi_interval else None,
            "monthly": [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()}
                        for r in self.monthly.iter_rows(named=True)],
            "warnings": list(self.warnings), "inference": self.inference,
        }


def _go_live(con: BaseBackend, plan: StudyPlan) -> tuple[pl.DataFrame, dict[str, date]]:
    """Each rep's go-live date (unit, treated_at), from the team map or the org-wide date.

    A go-live by team also gives each rep's ``team`` (its manager's id; a rep without a manager is
    a team of one): the cluster the staggered estimate's inference is by, since a team goes live
    at once and its reps' months move together.
    """
    r = plan.rollout
    assert r is not None
    users = rep_attributes(con, ["manager_id"]).rename({"unit": "user_id"})
    teams = dict(r.go_live_by_team)
    if teams:
        unknown = sorted(set(teams) - set(users["manager_id"].drop_nulls().to_list()))
        if unknown:
            raise StudyError(f"study {plan.name}: rollout.go_live_by_team: {', '.join(unknown[:5])} "
                             "manage no CRM user (a team is keyed by its manager's user id)")
        frame = pl.DataFrame({"manager_id": list(teams), "treated_at": list(teams.values())},
                             schema={"manager_id": pl.String, "treated_at": pl.Date})
        team = pl.col("manager_id").fill_null(pl.col("user_id")).alias("team")
        reps = users.join(frame, on="manager_id", how="left").select(pl.col("user_id").alias("unit"), "treated_at",
                                                                      team)
        return reps, teams
    assert r.go_live is not None
    return users.select(pl.col("user_id").alias("unit"), pl.lit(r.go_live).alias("treated_at")), {"*": r.go_live}


def _panel(con: BaseBackend, kpi: str, reps: pl.DataFrame) -> UnitPanel | None:
    """The KPI per rep and month, balanced (zeros where nothing happened), with go-live dates."""
    rows = assigned(compute(con, [kpi], monthly=True, grain="rep", basis="created")).filter(
        pl.col("value").is_not_null())
    if rows.is_empty():
        return None
    rows = rows.select(pl.col("grain_id").alias("unit"), "period", "numerator", "denominator")
    units = rows.select("unit").unique().join(reps, on="unit", how="left")
    periods = pl.date_range(rows["period"].min(), rows["period"].max(), "1mo", eager=True)  # type: ignore[arg-type]
    grid = units.join(pl.DataFrame({"period": periods}), how="cross")
    frame = grid.join(rows, on=["unit", "period"], how="left").with_columns(
        pl.col("numerator", "denominator").fill_null(0.0)).sort("unit", "period")
    spec = CATALOGUE[kpi]
    return UnitPanel(frame=frame, outcome=kpi, numerator="numerator", denominator="denominator",
                     higher_is_better=spec.higher_is_better, cluster="team" if "team" in frame.columns else None)


def _levels(panel: UnitPanel) -> tuple[float | None, float | None, float]:
    f = panel.frame.filter(pl.col("treated_at").is_not_null())
    live = panel.event_time() >= 0
    before, after = f.filter(~live), f.filter(live)

    def pooled(x: pl.DataFrame) -> float | None:
        d = float(x["denominator"].sum())
        return float(x["numerator"].sum()) / d if d else None

    return pooled(before), pooled(after), float(after["denominator"].sum())


def evaluate_rollout(con: BaseBackend, plan: StudyPlan) -> RolloutEvaluation:
    """Answer a CRM roll-out study (``rollout:`` in the study) from the warehouse ``con``.

    Raises
    ------
    StudyError
        No go-live date, teams unknown to the CRM, no cost for the roll-out.
    """
    r, iso = plan.rollout, plan.isolation
    if r is None:
        raise StudyError(f"study {plan.name}: not a CRM roll-out study (it has no rollout section)")
    reps, go_live = _go_live(con, plan)
    staged = reps["treated_at"].drop_nulls().dt.truncate("1mo").n_unique() > 1
    method = r.method if r.method != "auto" else ("staggered" if staged else "trend")
    months = r.post_months
    results: list[RolloutKpi] = []
    warnings: list[str] = []
    for kpi in r.kpis:
        spec = CATALOGUE[kpi]
        panel = _panel(con, kpi, reps)
        if panel is None:
            results.append(RolloutKpi(kpi, spec.label, spec.unit, spec.higher_is_better, None, None, None,
                                      "no data for this KPI in the warehouse", 0.0))
            continue
        before, after, volume = _levels(panel)
        effect: Effect | None = None
        why = None
        try:
            if method == "staggered":
                effect = estimate_staggered(panel, control="not_yet_treated", post_months=months,
                                            confidence=iso.confidence, replicates=iso.replicates,
                                            seed=iso.seed)
            else:
                effect = estimate_trend(panel, post_months=months, confidence=iso.confidence,
                                        replicates=iso.replicates, seed=iso.seed)
        except (NotApplicable, ValueError) as exc:
            why = str(exc)
            warnings.append(f"{spec.label}: the {method} estimate is not applicable: {exc}")
        results.append(RolloutKpi(kpi, spec.label, spec.unit, spec.higher_is_better, before, after, effect, why,
                                  volume))
    effects = {k.kpi: k.effect for k in results if k.effect is not None}
    benefits: list[Benefit] = []
    conversion = next((k for k in results if k.kpi == "lead_conversion" and k.effect is not None), None)
    interval: tuple[float, float] | None = None
    if conversion is not None and conversion.effect is not None and r.value_per_conversion:
        e = conversion.effect
        per = Decimal(str(r.value_per_conversion)) * Decimal(str(plan.gross_margin))
        leads = Decimal(str(round(conversion.post_volume)))
        credited = e.estimate if e.ci_low > 0 else 0.0  # conservative: a lift whose interval includes 0 earns 0
        amount = (Decimal(str(credited)) * leads * per).quantize(Decimal("0.01"))
        low, high = (Decimal(str(round(e.ci_low * float(leads * per), 2))),
                     Decimal(str(round(e.ci_high * float(leads * per), 2))))
        benefits.append(Benefit(
            "additional conversions", "revenue_margin", amount,
            f"{credited:+.4f} conversion lift × {leads:,} leads of live teams × ${r.value_per_conversion:,.0f} per "
            f"conversion × {plan.gross_margin:.1%} margin", {"lift": Decimal(str(credited)), "leads": leads,
                                                                    "value_per_conversion": per},
            "isolated effect", "lead_conversion", (low, high)))
        interval = (float(low), float(high))
        if credited == 0:
            warnings.insert(0, "the conversion lift's interval includes 0: no conversion benefit is credited")
    try:
        benefits += monetise(plan.monetisation, effects=effects)
    except ValueError as exc:
        raise StudyError(f"study {plan.name}: monetisation: {exc}") from exc
    costs = study_costs(con, plan)
    if not costs.time_costed:
        warnings.append(costs.notes[0])
    total = sum((b.amount for b in benefits), Decimal(0))
    monthly = compute(con, list(r.kpis), monthly=True, grain="org", basis="created").filter(
        pl.col("value").is_not_null())
    monthly = monthly.select("kpi", "period", "value", "numerator", "denominator").sort("kpi", "period")
    first = min(go_live.values())
    last = monthly["period"].max() if monthly.height else first
    live_months = max(1, (last.year - first.year) * 12 + last.month - first.month + 1)  # type: ignore[union-attr]
    figures = roi(total, costs.total, months_of_benefit=live_months)
    roi_iv = None
    if interval is not None:
        rest = float(total) - float(benefits[0].amount)
        cost = float(costs.total)
        roi_iv = ((interval[0] + rest - cost) / cost * 100, (interval[1] + rest - cost) / cost * 100)
    return RolloutEvaluation(plan.study, method, go_live, reps.height, tuple(results), tuple(benefits), costs, figures,
                             roi_iv, monthly, tuple(warnings), _inference(results))


def _inference(results: list[RolloutKpi]) -> str:
    """How the KPIs' intervals were computed, from the first estimate's diagnostics, in words."""
    for k in results:
        if k.effect is None:
            continue
        d = k.effect.diagnostics
        if "clustered_by" not in d:
            return "bootstrap over reps"
        reason = d.get("inference_reason")
        return f"by team ({d.get('clusters')} teams): {d['inference']}" + (f" — {reason}" if reason else "")
    return ""
