"""Console rendering of the product's accounts (ingest, link, data quality) with Rich.

Numbers follow the users' conventions: counts with thousands separators, percentages with one
decimal and a true minus sign, a KPI's chance of moving the better way as P(improvement), a
verdict with its reason, dates as ISO 8601 (unambiguous in every locale).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from training_roi._format import (
    describe_change,
    describe_value,
    duration,
    money,
    percent,
    probability,
    relative,
    share,
    true_minus,
)
from training_roi.evaluation.results import Evaluation, KpiResult
from training_roi.ingest.folder import IngestInfo
from training_roi.linking import LinkInfo
from training_roi.present.churn import churn_lines
from training_roi.present.forecast import forecast_rows
from training_roi.present.lesson_map import lesson_lines
from training_roi.present.next_lesson import next_lesson_lines
from training_roi.present.subgroups import subgroup_lines
from training_roi.present.verdicts import IMPROVEMENT, improvement, verdict
from training_roi.warehouse.quality import QualityReport

__all__ = ["evaluation_panel", "ingest_table", "kpi_table", "link_panel", "methods_table", "quality_panel", "show"]


def ingest_table(info: IngestInfo) -> Table:
    """Rows read / loaded / quarantined per source."""
    t = Table(title=f"Ingest of {info.data_dir}", title_justify="left")
    for col in ("source", "files", "read", "loaded", "quarantined", "duplicates", "new", "replaced"):
        t.add_column(col, justify="left" if col in ("source", "table") else "right")
    t.add_column("status")
    for s in info.sources:
        status = "[green]ok[/]" if s.status == "ok" else f"[red]{s.status}[/]"
        if s.unchanged:  # its files and tables as at its last load: not read again, its account that load's
            status += " [dim](unchanged, not read again)[/]"
        t.add_row(s.source, f"{s.files:,}", f"{s.rows_read:,}", f"{s.rows_loaded:,}",
                  f"{s.rows_quarantined:,}", f"{s.rows_duplicate:,}", f"{s.new:,}", f"{s.replaced:,}", status)
    if info.voided_statements:
        t.caption = f"{info.voided_statements:,} xAPI statements voided by later statements"
    return t


def ingest_notes(info: IngestInfo) -> Panel | None:
    """What the ingest noticed without refusing anything: absent columns, values a map did not name, users added."""
    notes = [n for s in info.sources for n in s.notes]
    if not notes:
        return None
    return Panel("\n".join(f"• {escape(n)}" for n in notes), title="Notes", title_align="left")


def link_panel(info: LinkInfo) -> Panel:
    """Link coverage: LMS identities resolved, and CRM users reached."""
    t = Table.grid(padding=(0, 2))
    t.add_column(justify="left")
    t.add_column(justify="right")
    t.add_column(justify="right")
    n = info.identities
    t.add_row("learner identities", f"{n:,}", "")
    t.add_row("  linked to a CRM user", f"{info.linked_users:,}", share(info.linked_users, n))
    t.add_row("  linked to a contact", f"{info.linked_contacts:,}", share(info.linked_contacts, n))
    t.add_row("  unlinked", f"{info.unlinked:,}", share(info.unlinked, n))
    t.add_row("  ambiguous (not guessed)", f"{info.ambiguous:,}", share(info.ambiguous, n))
    for method, count in sorted(info.by_method.items()):
        t.add_row(f"  linked by {method}", f"{count:,}", share(count, n))
    t.add_row("CRM users with learning records", f"{info.crm_users_linked:,}",
              share(info.crm_users_linked, info.crm_users))
    t.add_row("directory learners with no CRM record", f"{info.directory_learners_without_crm:,}", "")
    parts: list[Table | str] = [t]
    for status, rows in info.examples.items():
        if rows:
            parts.append(f"\n[bold]{status}[/] (first {len(rows)}):\n" + "\n".join(f"  {r}" for r in rows))
    return Panel(Group(*parts), title="Link: LMS learners ↔ CRM", title_align="left")


def quality_panel(report: QualityReport) -> Group:
    """The whole data-quality summary."""
    counts = Table(title="Warehouse", title_justify="left")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    counts.add_column("from")
    counts.add_column("to")
    for name, n in report.tables.items():
        lo, hi = report.date_ranges.get(name, (None, None))
        counts.add_row(name, f"{n:,}", _day(lo), _day(hi))
    q = Table(title="Quarantine", title_justify="left")
    for col in ("source", "file", "field", "rows", "first row", "example reason"):
        q.add_column(col, justify="right" if col in ("rows", "first row") else "left")
    for r in report.quarantine:
        q.add_row(r["source"], r["source_file"], r["field"] or "(row)", f"{r['rows']:,}",
                  f"{r['first_row']:,}", r["example"])
    if not report.quarantine:
        q.add_row("—", "", "", "0", "", "nothing quarantined")
    link = report.link
    cov = Table(title="Link coverage", title_justify="left")
    cov.add_column("measure")
    cov.add_column("count", justify="right")
    cov.add_column("share", justify="right")
    n = link["identities"]
    cov.add_row("learner identities", f"{n:,}", "")
    cov.add_row("linked to CRM users", f"{link['linked_users']:,}", share(link["linked_users"], n))
    cov.add_row("linked to contacts", f"{link['linked_contacts']:,}", share(link["linked_contacts"], n))
    cov.add_row("unlinked", f"{link['unlinked']:,}", share(link["unlinked"], n))
    cov.add_row("ambiguous", f"{link['ambiguous']:,}", share(link["ambiguous"], n))
    cov.add_row("CRM users with learning records", f"{link['crm_users_with_learning']:,}",
                share(link["crm_users_with_learning"], link["crm_users"]))
    warn = "\n".join(f"[yellow]![/] {w}" for w in report.warnings) or "[green]no warnings[/]"
    parts: list[Table | Panel] = [counts, q, cov]
    if report.syncs:
        parts.append(sync_table(report.syncs))
    if report.pushes:
        parts.append(push_table(report.pushes))
    return Group(*parts, Panel(warn, title="Warnings", title_align="left"))


def sync_table(syncs: list[dict[str, Any]]) -> Table:
    """Each live source: its last successful sync, how long ago that was, and how its last sync ended."""
    t = Table(title="Live sources (training-roi sync)", title_justify="left")
    for col in ("source", "last successful sync", "lag", "newest record stored", "last sync"):
        t.add_column(col, justify="right" if col == "lag" else "left")
    for s in syncs:
        t.add_row(s["source"], _when(s["last_success"]) or "never",
                  duration(s["lag_seconds"]), _when(s["watermark"]), s["last_status"] or "")
    return t


def push_table(pushes: list[dict[str, Any]]) -> Table:
    """Each CRM pushed to: its last push, when it ended, the records written and refused, how it ended."""
    t = Table(title="Pushes to the CRM (training-roi push)", title_justify="left")
    for col in ("target", "object", "last push", "written", "failed", "status"):
        t.add_column(col, justify="right" if col in ("written", "failed") else "left")
    for p in pushes:
        t.add_row(p["target"], p["object"], _when(p["finished"] or p["started"]), f"{p['written']:,}",
                  f"{p['failed']:,}", p["status"])
    return t


def _when(iso: str | None) -> str:
    return f"{iso[:19].replace('T', ' ')} UTC" if iso else ""


def _day(iso: str | None) -> str:
    return iso[:10] if iso else ""


def show(renderable: object, *, console: Console | None = None) -> None:
    """Print a renderable to the console (stdout)."""
    (console or Console()).print(renderable)


def kpi_table(kpis: tuple[KpiResult, ...], window_days: int) -> Table:
    """Each KPI's levels before and after for both groups, its difference-in-differences and verdict."""
    t = Table(title=f"Every KPI ({window_days}-day window; difference-in-differences)", title_justify="left")
    for col in ("KPI", "trained before → after", "comparison before → after", "effect (interval)", "relative",
                "verdict"):
        t.add_column(col, justify="left" if col in ("KPI", "verdict") else "right")
    for k in kpis:
        d = k.did
        colour = {"improved": "green", "worsened": "red"}.get(k.verdict, "yellow")
        t.add_row(
            k.label + ("" if k.higher_is_better else " (lower is better)"),
            f"{describe_value(k.trained_baseline, k.unit)} → {describe_value(k.trained_post, k.unit)}",
            f"{describe_value(k.comparison_baseline, k.unit)} → {describe_value(k.comparison_post, k.unit)}",
            f"{describe_change(d.estimate, k.unit)} ({describe_change(d.ci_low, k.unit)} to "
            f"{describe_change(d.ci_high, k.unit)})" if d else "—",
            relative(d.relative) if d else "—",
            f"[{colour}]{escape(verdict(k))}[/]",
        )
    return t


def methods_table(ev: Evaluation) -> Table | None:
    """Every estimator's answer side by side, the recommended one starred, the naive ones last."""
    c = ev.methods
    if c is None:
        return None
    head = next(k for k in ev.primary.kpis if k.kpi == ev.primary.headline_kpi)
    unit = head.unit
    t = Table(title="Every method (monthly panel of the headline KPI)", title_justify="left")
    for col in ("method", "effect (interval)", IMPROVEMENT, "challenges passed", "notes"):
        t.add_column(col, justify="right" if col in ("effect (interval)", IMPROVEMENT, "challenges passed")
                     else "left")
    for r in c.results:
        star = "★ " if r.method == c.recommended else ""
        if r.effect is None:
            t.add_row(star + r.label, "—", "—", "—", f"[dim]not applicable: {r.not_applicable}[/]")
            continue
        e = r.effect
        passed = sum(x.passed for x in r.refutations)
        failed = [x.test for x in r.refutations if not x.passed]
        # The console gives each caution's gist; the HTML report and result.json have the full text.
        notes = "; ".join([*(w.split(":")[0].split(";")[0] for w in e.warnings),
                           *(f"fails the {f}" for f in failed)])
        t.add_row(star + r.label,
                  f"{describe_change(e.estimate, unit)} ({describe_change(e.ci_low, unit)} to "
                  f"{describe_change(e.ci_high, unit)})",
                  probability(improvement(e, head.higher_is_better)),
                  f"{passed} of {len(r.refutations)}" if r.refutations else "—", escape(true_minus(notes)))
    for n in ev.primary.naive:
        t.add_row(f"[yellow]{n.method} (biased)[/]", describe_change(n.estimate, unit), "—", "—",
                  n.assumptions[0])
    t.caption = f"★ recommended: {c.reason}"
    return t


_TIME_SOURCE = {"sessions": "sessions", "completion": "completion's total time", "report": "completion report",
                "fixed": "study's minutes per learner", "none": "no time recorded"}


def evaluation_panel(ev: Evaluation) -> Group:
    """The answer to a study: headline, windows, KPIs, the biased references, costs, data, warnings."""
    p = ev.primary
    did = p.did
    head_kpi = next(k for k in p.kpis if k.kpi == p.headline_kpi)
    unit = head_kpi.unit
    if did is not None:
        effect = (f"{describe_change(did.estimate, unit)} {head_kpi.label} ({did.confidence:.0%} interval "
                  f"{describe_change(did.ci_low, unit)} to {describe_change(did.ci_high, unit)}; "
                  f"{relative(did.relative)} relative; {IMPROVEMENT} = "
                  f"{probability(improvement(did, head_kpi.higher_is_better))})")
    else:
        effect = "not estimated"
    verdict = (f"[green]{head_kpi.label} effect established[/]" if p.credit.is_credited
               else f"[yellow]{head_kpi.label} effect not established[/]")
    lines = [
        f"[bold]{ev.study.name}[/] — {verdict}: {p.credit.why}",
        *ev.headline(),
        f"Effect ({p.design_label}, {p.window_days}-day window): {effect}",
        *([f"Design: {ev.design_reason}"] if p.design != "did" or ev.methods is not None else []),
        f"Net benefit (credited): {money(p.net_benefit)}   "
        f"Payback: {f'{float(p.payback_months):,.1f} months' if p.payback_months is not None else 'none'}",
        *(f"Forecast, {label}: {text}" for label, text in forecast_rows(ev.forecast, ev.forecast_basis,
                                                                         ev.study.population.unit)
          if label in ("12 months", "payback", "forecast")),
        *(escape(line) for line in subgroup_lines(ev)),
        *(escape(line) for line in lesson_lines(ev)),
        *(escape(line) for line in next_lesson_lines(ev)),
        *(escape(line) for line in churn_lines(ev)),
    ]
    head = Panel("\n".join(lines), title="Training ROI", title_align="left")
    windows = Table(title=f"Every attribution window ({head_kpi.label})", title_justify="left")
    for col in ("days", "trained / compared", "effect (interval)", "revenue (central)", "ROI (central)",
                "revenue credited", "ROI credited"):
        windows.add_column(col, justify="right", no_wrap=col != "effect (interval)")
    for w in ev.windows:
        d = w.did
        windows.add_row(
            f"{w.window_days}" + ("*" if w is p else ""), f"{w.trained_units:,} / {w.comparison_units:,}",
            f"{describe_change(d.estimate, unit)} [{describe_change(d.ci_low, unit)}, "
            f"{describe_change(d.ci_high, unit)}]" if d else "—",
            money(w.central.incremental_revenue) if w.central is not None else "—",
            percent(w.central.roi_pct) if w.central is not None else "—", money(w.incremental_revenue),
            percent(w.roi_pct) if w.incremental_revenue > 0 else "not credited",
        )
    windows.caption = (f"* primary window; ROI at {ev.study.value.gross_margin:.1%} gross margin"
                       + (f"; revenue: {p.revenue[p.revenue_definition].label}" if p.revenue_definition in p.revenue
                          else ""))
    refs = Table(title="Naive comparisons (biased: shown because reviewers ask, never the answer)",
                 title_justify="left")
    for col in ("method", "estimate", "interval", "why it is biased"):
        refs.add_column(col)
    for n in p.naive:
        refs.add_row(n.method, describe_change(n.estimate, unit),
                     f"{describe_change(n.ci_low, unit)} to {describe_change(n.ci_high, unit)}", n.assumptions[0])
    costs = Table(title="Fully loaded cost", title_justify="left")
    costs.add_column("category")
    costs.add_column("amount", justify="right")
    for category, amount in ev.costs.by_category.items():
        if amount:
            costs.add_row(category.replace("_", " "), money(amount))
    if ev.costs.shared_allocated:
        costs.add_row("shared (allocated)", money(ev.costs.shared_allocated))
    if not ev.costs.time_costed:
        hours = (ev.costs.uncosted_minutes or 0) / 60
        costs.add_row("[yellow]participant_time: not costed[/]", f"[yellow]{hours:,.1f} h left out[/]")
    costs.add_row("[bold]total[/]" if ev.costs.time_costed else "[bold]total (not fully loaded)[/]",
                  f"[bold]{money(ev.costs.total)}[/]")
    if ev.costs.time_sources:
        costs.caption = "participant time from: " + ", ".join(
            f"{_TIME_SOURCE.get(k, k)} {n:,}" for k, (n, _) in ev.costs.time_sources.items())
    for name, amount in ev.costs.excluded.items():
        costs.add_row(f"[dim]left out: {name}[/]", f"[dim]{money(amount)}[/]")
    foot = (f"study {ev.study.name!r} (hash {ev.study.hash}) · data: "
            + ", ".join(f"{k} {v:,}" for k, v in ev.data.items() if v and k.startswith(("crm_opp", "lms_st", "learn"))))
    warn = "\n".join(f"[yellow]![/] {escape(true_minus(w))}" for w in ev.warnings) or "[green]no warnings[/]"
    methods = methods_table(ev)
    from training_roi.present.attribution import attribution_table  # it formats money with this module

    attribution = [attribution_table(ev.attribution)] if ev.attribution is not None else []
    if ev.phillips is not None:
        from training_roi.present.levels import level_rows

        levels = Table(title=f"Phillips' five levels ({ev.phillips.program})", title_justify="left")
        for col in ("level", "figures", "from"):
            levels.add_column(col)
        for row in level_rows(ev.phillips):
            levels.add_row(*row)
        attribution.append(levels)
    parts: list[Panel | Table | str] = [head, kpi_table(p.kpis, p.window_days), windows,
                                        *([methods] if methods else []), *attribution, refs, costs,
                                        Panel(warn, title="Warnings", title_align="left"), foot]
    return Group(*parts)
