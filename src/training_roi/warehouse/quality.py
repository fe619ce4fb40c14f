"""The data-quality account of a warehouse: what it holds, what was refused, what to watch.

A user must be able to see, before believing any ROI figure, how many rows each source gave,
how many could not be used and why, how well learners link to the CRM, which dates the data
spans, and the warnings that change how results should be read (deals without amounts, learners
without completions, …). :func:`quality_report` computes it with Ibis expressions; the console
and JSON presenters only format it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis import _
from ibis.backends import BaseBackend

from training_roi.warehouse.connection import ensure_tables, row_count
from training_roi.warehouse.schema import TABLES

__all__ = ["RUN_STARTED", "QualityReport", "quality_report"]

RUN_STARTED = "started, not finished"
"""The ``ingest_run`` status of a source whose ingest began and has not ended (or was killed)."""

_DATE_COLUMNS = {
    "crm_opportunity": "close_date",
    "crm_opportunity_history": "created_at",
    "crm_lead": "created_at",
    "crm_activity": "created_at",
    "crm_case": "created_at",
    "crm_user": "created_at",
    "lms_statement": "timestamp",
    "lms_completion": "completed_at",
    "survey_response": "submitted_at",
    "cost_line": "date",
    "learning_record": "occurred_at",
}


@dataclass
class QualityReport:
    """Counts, quarantine reasons, link coverage, date ranges and warnings of a warehouse."""

    tables: dict[str, int]
    runs: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    link: dict[str, int]
    date_ranges: dict[str, tuple[str | None, str | None]]
    warnings: list[str] = field(default_factory=list)
    syncs: list[dict[str, Any]] = field(default_factory=list)
    """Per live source (``training-roi sync``): its last successful sync, lag, watermark and last outcome."""
    pushes: list[dict[str, Any]] = field(default_factory=list)
    """Per CRM pushed to (``training-roi push``): its last push, when, records written and failed, how it ended."""

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return asdict(self)

    def __str__(self) -> str:
        quarantined = sum(q["rows"] for q in self.quarantine)
        lines = [f"{name}: {n:,} rows" for name, n in self.tables.items() if n]
        lines.append(f"quarantine: {quarantined:,} rows")
        lines += [f"sync {s['source']}: last success {s['last_success'] or 'never'}, lag {s['lag_seconds']} s"
                  for s in self.syncs]
        lines += [f"push {p['target']}: last {p['finished'] or p['started']}, {p['written']:,} written, "
                  f"{p['failed']:,} failed" for p in self.pushes]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def quality_report(con: BaseBackend) -> QualityReport:
    """Compute the data-quality account of the warehouse ``con``."""
    ensure_tables(con)
    names = [name for name in TABLES if TABLES[name].layer != "audit"]
    # One query for every table's count: each query has a fixed cost that 30 tables multiply.
    counts = ibis.union(*(con.table(n).aggregate(name=ibis.literal(n), rows=_.count()) for n in names))
    found = {r["name"]: int(r["rows"]) for r in counts.to_pyarrow().to_pylist()}
    tables = {name: found[name] for name in names}
    runs_t = con.table("ingest_run")
    runs = runs_t.order_by("source").to_pyarrow().to_pylist()
    q = con.table("quarantine")
    reasons = (
        q.group_by(["source", "source_file", "field"])
        .agg(rows=q.source_line.nunique(), example=q.reason.min(), first_row=q.source_line.min())
        .order_by([q.source, q.source_file, q.field])
        .to_pyarrow()
        .to_pylist()
    )
    li = con.table("learner_identity")
    counted = _counts(li, linked_users=li.crm_user_id.notnull(), linked_contacts=li.crm_contact_id.notnull(),
                      unlinked=li.status == "unlinked", ambiguous=li.status == "ambiguous")
    link = {
        "identities": tables["learner_identity"],
        **counted,
        "crm_users": tables["crm_user"],
        "crm_users_with_learning": row_count(
            li.filter(li.crm_user_id.notnull())
            .semi_join(con.table("learning_record"), "learner_key")
            .select("crm_user_id")
            .distinct()
        ),
    }
    ranges: dict[str, tuple[str | None, str | None]] = {}
    for name, col in _DATE_COLUMNS.items():
        if not tables.get(name):
            continue
        t = con.table(name)
        row = t.aggregate(lo=t[col].min(), hi=t[col].max()).to_pyarrow().to_pylist()[0]
        ranges[name] = (_iso(row["lo"]), _iso(row["hi"]))
    report = QualityReport(tables, runs, reasons, link, ranges, syncs=sync_status(con), pushes=push_status(con))
    report.warnings = _warnings(con, report)
    return report


def sync_status(con: BaseBackend, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each synced source: last successful sync (its end), lag (seconds since then), watermark, last run's outcome."""
    runs = con.table("sync_run").to_pyarrow().to_pylist()
    # The row of kind "links" is no source's: it says whether the learner links are stale (sync.state).
    marks = {r["source"]: r for r in con.table("sync_state").to_pyarrow().to_pylist() if r["kind"] != "links"}
    now = now or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    for source in sorted({r["source"] for r in runs} | set(marks)):
        mine = sorted((r for r in runs if r["source"] == source), key=lambda r: r["started"])
        done = [r["finished"] for r in mine if r["status"] == "ok" and r["finished"] is not None]
        last = mine[-1] if mine else None
        success = max(done) if done else None
        mark = marks.get(source, {}).get("watermark")
        out.append({
            "source": source,
            "endpoint": (last or marks.get(source, {})).get("endpoint"),
            "last_success": _iso(success),
            "lag_seconds": None if success is None else round((now - success).total_seconds(), 1),
            "watermark": _iso(mark),
            "last_status": None if last is None else last["status"],
            "last_error": None if last is None else last["error"],
        })
    return out


def push_status(con: BaseBackend) -> list[dict[str, Any]]:
    """Each CRM pushed to (``push_run``): its last push — when, the object, records written and failed, its outcome."""
    runs = con.table("push_run").to_pyarrow().to_pylist()
    out: list[dict[str, Any]] = []
    for target in sorted({r["target"] for r in runs}):
        last = max((r for r in runs if r["target"] == target), key=lambda r: r["started"])
        out.append({"target": target, "object": last["object"], "endpoint": last["endpoint"],
                    "started": _iso(last["started"]), "finished": _iso(last["finished"]), "study": last["study"],
                    "changed": last["changed"], "written": last["written"], "failed": last["failed"],
                    "status": last["status"], "error": last["error"]})
    return out


def _iso(value: object) -> str | None:
    if value is None:
        return None
    iso = getattr(value, "isoformat", None)
    return iso() if iso else str(value)


def _counts(t: ir.Table, **conditions: ir.BooleanValue | None) -> dict[str, int]:
    """How many rows of ``t`` meet each condition (None: every row), all counted in one query.

    A row whose condition is null is not counted, as a filter would leave it out.
    """
    row = t.aggregate(**{name: t.count() if cond is None else t.count(where=cond)
                         for name, cond in conditions.items()}).to_pyarrow().to_pylist()[0]
    return {name: int(row[name]) for name in conditions}


def _warnings(con: BaseBackend, r: QualityReport) -> list[str]:
    """Things a user must see before trusting results, in plain words with counts."""
    out: list[str] = []
    for run in r.runs:
        if run["status"] == RUN_STARTED:
            out.append(f"source {run['source']}: an ingest began loading it and did not finish (stopped or "
                       "killed); it may be half loaded: run the ingest of its folder again")
        elif run["status"] != "ok":
            out.append(f"source {run['source']} was refused: {run['status'].removeprefix('refused: ')}")
    for s in r.syncs:
        if s["last_status"] == RUN_STARTED:
            out.append(f"sync of {s['source']}: the last one began and did not finish (stopped or killed); the next "
                       "sync goes on from where it stopped")
        elif s["last_status"] not in (None, "ok"):
            since = f"last successful sync {s['last_success']}" if s["last_success"] else "never synced successfully"
            out.append(f"sync of {s['source']} failed ({since}): {s['last_error']}")
    for p in r.pushes:
        if p["status"] == RUN_STARTED:
            out.append(f"push to {p['target']}: the last one began and did not finish (stopped or killed); the next "
                       "push compares again and writes what is still different")
        elif p["status"] != "ok":
            out.append(f"push to {p['target']} of {p['started'][:10]}: {p['failed']:,} of {p['changed']:,} record(s) "
                       f"refused{': ' + p['error'] if p['error'] else ''} (push_audit says why)")
    if r.tables["crm_opportunity"]:
        opp = con.table("crm_opportunity")
        live = opp.filter(~opp.is_deleted)
        checks = (
            (live.amount.isnull(), "have no amount: they count in win rates but add no revenue"),
            (live.owner_id.isnull(), "have no owner: they cannot be tied to a rep"),
            (live.created_at.isnull(), "have no created date: they fall outside every window"),
            (live.is_closed & (live.close_date < live.created_at.date()),
             "closed before they were created (close date earlier than created date): a sales cycle measured "
             "from them is negative"),
            (live.amount < 0, "have a negative amount: won, they lower revenue"),
        )
        # One scan of the opportunities counts every check (a query per check re-read them each time).
        found = _counts(live, total=None, **{f"check_{i}": cond for i, (cond, _) in enumerate(checks)})
        total = found["total"]
        for i, (_, what) in enumerate(checks):
            n = found[f"check_{i}"]
            if n:
                out.append(f"{n:,} of {total:,} opportunities ({n / total:.1%}) {what}")
        if r.tables["crm_user"]:
            users = con.table("crm_user")
            orphans = row_count(live.filter(live.owner_id.notnull()).anti_join(users, live.owner_id == users.user_id))
            if orphans:
                out.append(f"{orphans:,} opportunities have an owner missing from User.csv")
        deleted = r.tables["crm_opportunity"] - total
        if deleted:
            out.append(f"{deleted:,} deleted opportunities are kept but not analysed")
    if r.tables["crm_user"]:
        users = con.table("crm_user")
        n = row_count(users.filter(users.email_norm.isnull()))
        if n:
            out.append(f"{n:,} CRM users have no email and cannot be linked to learners")
    if r.tables["lms_learner"]:
        learners = con.table("lms_learner")
        rec = con.table("learning_record")
        li = con.table("learner_identity")
        done = rec.filter(rec.verb == "completed").select("learner_key")
        finished = li.semi_join(done, "learner_key")
        by_id = finished.select(done_id=finished.learner_id)
        by_email = finished.select(done_email=finished.email_norm)
        without = learners.anti_join(by_id, learners.learner_id == by_id.done_id)
        without = without.anti_join(by_email, without.email_norm == by_email.done_email)
        n = row_count(without)
        if n:
            out.append(f"{n:,} of {r.tables['lms_learner']:,} directory learners have no completion")
    if r.tables["lms_statement"]:
        st = con.table("lms_statement")
        found = _counts(st, voided=st.is_voided, no_time=st.timestamp.isnull())
        voided, no_time = found["voided"], found["no_time"]
        if voided:
            out.append(f"{voided:,} xAPI statements were voided and do not count")
        if no_time:
            out.append(f"{no_time:,} xAPI statements have no timestamp: they fall outside every window")
    link = r.link
    if link["unlinked"]:
        out.append(f"{link['unlinked']:,} learner identities are not linked to the CRM (see `training-roi link`)")
    if link["ambiguous"]:
        out.append(f"{link['ambiguous']:,} learner identities match several CRM records and were not guessed")
    quarantined = sum(q["rows"] for q in r.quarantine)
    if quarantined:
        out.append(f"{quarantined:,} rows are in quarantine (table `quarantine` has each with its reason)")
    return out
