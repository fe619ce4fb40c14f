"""What the server shows of a study's result: one program row, worded as the reports word it.

A stored result is the study's ``result.json`` (see docs/result.md); this module reads the
figures a list of programs and a study's page need from it — the credited ROI (the answer), ROI
and net benefit at the central estimate with their intervals, P(ROI > 0), cost and benefit,
payback, the Phillips levels that have data, the design — never recomputing one. Money and
percentages are written by :mod:`training_roi._format`, as every other output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from training_roi._format import describe_change, money, percent, probability

__all__ = ["KpiRow", "ProgramRow", "kpi_rows", "program_row", "study_sections"]

def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass(frozen=True)
class ProgramRow:
    """One study's latest result, as the programs list and the API show it (money as exact strings)."""

    study_hash: str
    version: int
    name: str
    program: str
    window_days: int
    cost: str
    benefit: str
    roi_pct: str
    """The credited (conservative) ROI: the answer."""
    central_roi_pct: str | None
    central_roi_interval: tuple[float, float] | None
    prob_positive: float | None
    net_benefit_central: str | None
    payback_months: str | None
    levels_reached: tuple[int, ...]
    design: str
    established: bool
    computed: str
    """When the result was stored (UTC, ISO 8601)."""
    words: str
    """The row in a sentence: the answer, then how sure."""

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        out = asdict(self)
        out["central_roi_interval"] = list(self.central_roi_interval) if self.central_roi_interval else None
        out["levels_reached"] = list(self.levels_reached)
        return out


def _levels(doc: dict[str, Any]) -> tuple[int, ...]:
    """The Phillips levels with data, counted as the portfolio counts them (level 5 always)."""
    ph = doc.get("phillips")
    if not ph:
        return (4, 5) if doc["headline"].get("kpis") else (5,)
    reaction, learning, application = ph["reaction"], ph["learning"], ph["application"]
    reached = [
        reaction.get("n", 0) > 0,
        learning.get("scores_n", 0) > 0 or learning.get("passed", 0) + learning.get("failed", 0) > 0,
        application["survey"].get("n", 0) > 0 or sum(c.get("n", 0) for c in application.get("behaviour", [])) > 0,
        len(ph["impact"].get("effects", [])) > 0,
        True,
    ]
    return tuple(i for i, ok in enumerate(reached, 1) if ok)


def program_row(document: str | dict[str, Any], *, version: int, computed: str) -> ProgramRow:
    """The programs-list row of one stored ``result.json``."""
    doc = json.loads(document) if isinstance(document, str) else document
    h, study = doc["headline"], doc["study"]
    central = h.get("central") or {}
    interval = central.get("roi_interval")
    roi = _dec(h["roi_pct"]) or Decimal(0)
    words = f"credited ROI {percent(roi)}"
    if central.get("roi_pct") is not None:
        words += f"; at the central estimate {percent(Decimal(central['roi_pct']))}"
        if interval:
            words += f" [{percent(Decimal(str(interval[0])))} to {percent(Decimal(str(interval[1])))}]"
    if central.get("prob_positive") is not None:
        words += f", P(ROI > 0) {probability(central['prob_positive'])}"
    settings = study.get("settings", {})
    program = settings.get("program", {}).get("name") or study.get("name", "")
    payback = h.get("payback_months")
    return ProgramRow(
        study_hash=study["hash"], version=version, name=study["name"], program=program,
        window_days=int(h["window_days"]), cost=str(doc["costs"]["total"]), benefit=str(h["benefit"]),
        roi_pct=str(h["roi_pct"]), central_roi_pct=central.get("roi_pct"),
        central_roi_interval=(float(interval[0]), float(interval[1])) if interval else None,
        prob_positive=central.get("prob_positive"), net_benefit_central=central.get("net_benefit"),
        payback_months=None if payback is None else str(payback), levels_reached=_levels(doc),
        design=str(h.get("design_label") or h.get("design", "")), established=bool(doc.get("established")),
        computed=computed, words=words)


@dataclass(frozen=True)
class KpiRow:
    """One KPI's isolated effect in the primary window, as the study page shows it."""

    kpi: str
    label: str
    effect: str
    interval: str
    verdict: str
    reason: str


def kpi_rows(document: str | dict[str, Any]) -> list[KpiRow]:
    """The KPIs of the primary window: effect and interval in the KPI's own unit, and the verdict in words."""
    doc = json.loads(document) if isinstance(document, str) else document
    rows = []
    for k in doc["headline"].get("kpis", []):
        did = k.get("did") or {}
        unit = k.get("unit", "")
        interval = (f"{describe_change(did.get('ci_low'), unit)} to {describe_change(did.get('ci_high'), unit)}"
                    if did.get("ci_low") is not None else "no interval")
        credit = k.get("credit") or {}
        rows.append(KpiRow(kpi=k["kpi"], label=k.get("label", k["kpi"]),
                           effect=describe_change(did.get("estimate"), unit), interval=interval,
                           verdict=k.get("verdict", "not established"), reason=str(credit.get("reason", ""))))
    return rows


def _pct(value: Any) -> str:
    return "—" if value is None else percent(Decimal(str(value)))


def _money(value: Any) -> str:
    return "—" if value is None else money(Decimal(str(value)))


def study_sections(document: dict[str, Any]) -> dict[str, Any]:
    """The parts of a result a study's page shows below its headline, worded.

    How sure (the power warning, what would settle it), each attribution window, the sensitivity
    table, the fully loaded cost, attribution by channel and the assumptions — aggregates only, so a
    viewer's page shows them too.
    """
    h, s = document["headline"], document["study"]["settings"]

    def payback(months: Any) -> str:
        return "not reached" if months is None else f"{float(months):.1f} months"

    windows = [{"days": w["window_days"], "revenue": _money(w.get("incremental_revenue")),
                "roi": _pct(w.get("roi_pct")), "payback": payback(w.get("payback_months")),
                "primary": w["window_days"] == h["window_days"]} for w in document.get("windows") or []]
    sensitivity = [{"lever": r["lever"], "case": r["case"], "assumption": r["assumption"],
                    "revenue": _money(r["incremental_revenue"]), "roi": _pct(r["roi_pct"])}
                   for r in document.get("sensitivity") or []]
    costs = document.get("costs") or {}
    cost_rows = [{"category": k.replace("_", " "), "amount": _money(v)}
                 for k, v in (costs.get("by_category") or {}).items() if Decimal(str(v))]
    if costs.get("shared_allocated") and Decimal(str(costs["shared_allocated"])):
        cost_rows.append({"category": "shared costs (allocated)", "amount": _money(costs["shared_allocated"])})
    attribution = document.get("attribution") or {}
    channels = sorted(attribution.get("by_channel") or [], key=lambda c: -float(c.get("credited_value") or 0))[:10]
    w = s.get("windows", {})
    others = ", ".join(str(d) for d in w.get("sensitivity_days", []) if d != w.get("primary_days"))
    threshold = (s.get("threshold") or {}).get("min_relative_change")
    assumptions = [
        ("attribution window", f"{w.get('primary_days')} days after training"
                               + (f" (also {others} days)" if others else "") + f", ramp {w.get('ramp_days', 0)} days"),
        ("baseline", f"{s.get('baseline', {}).get('months')} months before training"),
        ("headline KPI", str(h.get("headline_kpi", ""))),
        ("revenue counted", str(h.get("value_formula", ""))),
        ("gross margin", f"{float(s.get('value', {}).get('gross_margin', 1.0)):.0%}"),
        ("credit threshold", "—" if threshold is None else f"{float(threshold):.1%} relative change, and an "
                                                          "interval that excludes zero"),
        ("design", f"{h.get('design_label', '')} ({(document.get('design') or {}).get('reason', '')})"),
        ("currency", str(s.get("currency", ""))),
    ]
    return {"how_sure": [t for t in (h.get("power_warning"), h.get("settle"), h.get("tenure_note")) if t],
            "windows": windows, "sensitivity": sensitivity, "costs": cost_rows,
            "cost_total": _money(costs.get("total")),
            "channels": [{"channel": c["channel"], "kind": c.get("kind", ""), "deals": c.get("deals", 0),
                          "credited": _money(c.get("credited_value")), "held": _money(c.get("calibrated_value"))}
                         for c in channels],
            "assumptions": assumptions}
