"""Fully loaded cost of a program: its cost lines, participant time and a share of shared costs.

Costs are *fully loaded*: leaving out participant wages, platform fees or
administration makes an ROI look better than it is. The cost is assembled from the warehouse
with Ibis expressions (so it runs on any engine the warehouse runs on):

* the program's own ``cost_line`` rows, summed per category of the contract;
* participant time: Σ minutes of the learners' ``learning_record`` rows / 60 × an hourly rate
  (one rate, or one per CRM title through ``learner_identity`` → ``crm_user.title``) — unless
  ``costs.csv`` already lists ``participant_time`` lines, which are then used alone so the time is
  not counted twice;
* shared lines (no program) × the program's share of them.

Money is ``Decimal``: the warehouse sums ``decimal(18, 2)`` exactly; the two derived amounts
(participant time, shared allocation) are rounded once each to the cent, half up, so every
figure and the total are exact sums of cents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis import _
from ibis.backends import BaseBackend

from training_roi.value.roi import Amount, _dec, _div
from training_roi.warehouse.connection import require_tables

__all__ = ["CATEGORIES", "CostBreakdown", "CostInputs", "ParticipantTime", "cost_breakdown"]

#: Cost categories of the ``cost_line`` contract, in the order reports show them.
CATEGORIES: tuple[str, ...] = (
    "development",
    "licensing",
    "platform",
    "facilitation",
    "participant_time",
    "travel",
    "administration",
    "evaluation",
    "other",
)

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _money(value: object) -> Decimal:
    """A summed money value from the engine (``None`` for an empty sum) as a ``Decimal``."""
    if value is None:
        return _ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class ParticipantTime:
    """Time spent learning by one group of participants, and what it cost.

    ``title`` is the CRM title the rate was chosen for, or ``None`` when one rate applies to
    everyone (or the learners have no title and the default rate was used).
    """

    title: str | None
    minutes: Decimal
    hourly_rate: Decimal
    amount: Decimal

    @property
    def hours(self) -> Decimal:
        """Minutes / 60 (not rounded)."""
        return _div(self.minutes, Decimal(60))


@dataclass(frozen=True)
class CostBreakdown:
    """The fully loaded cost of one or more programs, line by line.

    Attributes
    ----------
    programs
        The programs whose cost lines were taken.
    by_category
        Every category of :data:`CATEGORIES` with its amount, the program's own lines;
        ``participant_time`` holds either its cost lines or the derived amount, never both.
    participant_time
        How the derived participant time was costed (empty when it came from cost lines).
    participant_time_source
        ``"cost lines"``, ``"learning records"`` or ``"none"``.
    shared_total, shared_share, shared_allocated
        Shared lines (no program) in total, the program's share, and the amount allocated.
    total
        Σ ``by_category`` + ``shared_allocated``.
    notes
        Decisions a reader must know about (double counting avoided, records without minutes…).
    """

    programs: tuple[str, ...]
    by_category: dict[str, Decimal]
    participant_time: tuple[ParticipantTime, ...]
    participant_time_source: str
    shared_total: Decimal
    shared_share: Decimal
    shared_allocated: Decimal
    total: Decimal
    notes: tuple[str, ...] = ()

    @property
    def participant_hours(self) -> Decimal:
        """Hours of learning costed from learning records (0 when it came from cost lines)."""
        return _div(sum((p.minutes for p in self.participant_time), Decimal(0)), Decimal(60))

    @property
    def participant_rate(self) -> Decimal | None:
        """The single hourly rate used, or ``None`` when several (per title) or none applied."""
        rates = {p.hourly_rate for p in self.participant_time}
        return rates.pop() if len(rates) == 1 else None

    @property
    def participant_time_amount(self) -> Decimal:
        """Participant time as costed, whatever its source."""
        return self.by_category["participant_time"]

    def asdict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; money as exact decimal strings."""
        return {
            "programs": list(self.programs),
            "by_category": {k: str(v) for k, v in self.by_category.items()},
            "participant_time": [
                {"title": p.title, "minutes": str(p.minutes), "hourly_rate": str(p.hourly_rate),
                 "amount": str(p.amount)}
                for p in self.participant_time
            ],
            "participant_time_source": self.participant_time_source,
            "shared_total": str(self.shared_total),
            "shared_share": str(self.shared_share),
            "shared_allocated": str(self.shared_allocated),
            "total": str(self.total),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        rows: list[tuple[str, str]] = [(c, f"{a:,.2f}") for c, a in self.by_category.items()]
        for p in self.participant_time:
            who = p.title if p.title is not None else "all participants"
            rows.append((f"  time: {who}", f"{p.hours:,.2f} h × {p.hourly_rate:,.2f} = {p.amount:,.2f}"))
        rows.append((f"shared ({self.shared_share:%} of {self.shared_total:,.2f})", f"{self.shared_allocated:,.2f}"))
        rows.append(("total (fully loaded)", f"{self.total:,.2f}"))
        width = max(len(label) for label, _ in rows)
        lines = [f"Cost of {', '.join(self.programs)} (participant time from {self.participant_time_source})"]
        lines += [f"{label:<{width}}  {text:>18}" for label, text in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class CostInputs:
    """What a study says about cost: which cost lines count, and what the learners' time costs.

    The stage's own settings object, resolved from a study once (:func:`training_roi.study.plan_study`);
    its fields are :func:`cost_breakdown`'s arguments.
    """

    programs: tuple[str, ...]
    activities: tuple[str, ...] = ()
    use_cost_lines: bool = True
    minutes_per_learner: Decimal | None = None
    hourly_rate: Decimal | None = None
    hourly_rate_by_title: dict[str, Decimal] | None = None
    shared_share: Decimal = Decimal(0)
    employees_only: bool = False
    """Only employees' learning time is a cost (customer education with no rate for customers)."""


def _minutes(value: object) -> Decimal:
    """Minutes summed by the engine (a float) as a ``Decimal`` through its shortest repr."""
    return Decimal(0) if value is None else Decimal(repr(float(value)))  # type: ignore[arg-type]


def cost_breakdown(
    con: BaseBackend,
    *,
    programs: str | Iterable[str],
    learner_keys: Iterable[str] | None = None,
    activities: Iterable[str] | None = None,
    hourly_rate: Amount | None = None,
    hourly_rate_by_title: Mapping[str, Amount] | None = None,
    shared_share: Amount = 0,
    use_cost_lines: bool = True,
    minutes_per_learner: Amount | None = None,
) -> CostBreakdown:
    """The fully loaded cost of ``programs`` from the warehouse.

    Parameters
    ----------
    con
        The warehouse (any Ibis backend) with ``cost_line`` and ``learning_record``, and
        ``learner_identity`` and ``crm_user`` when rates are per title.
    programs
        Program name(s) as written in ``cost_line.program``.
    learner_keys
        The participants (``learning_record.learner_key``): their records of these programs, or
        of no named program, count. ``None``: every record of these programs.
    activities
        The program's activity or course ids: records of them count as the program's too (xAPI
        records usually name no program).
    hourly_rate
        Loaded hourly cost of a participant; with ``hourly_rate_by_title``, the rate for titles
        it does not list.
    hourly_rate_by_title
        Hourly rate per CRM user title (exact match).
    shared_share
        Fraction (0–1) of the shared cost lines (empty program) borne by these programs.
    use_cost_lines
        Whether ``costs.csv`` lines count (False: participant time only, e.g. when the program's
        other costs are accounted elsewhere).
    minutes_per_learner
        Cost a fixed time per participant instead of the time the LMS recorded (for sources
        that record no duration, or a policy figure finance prefers).

    Raises
    ------
    ValueError
        When learning time must be costed but no rate covers some of it, or an argument is out
        of range.
    """
    names = (programs,) if isinstance(programs, str) else tuple(programs)
    if not names:
        raise ValueError("programs must name at least one program")
    share = _dec(shared_share, "shared_share")
    if not 0 <= share <= 1:
        raise ValueError(f"shared_share must be between 0 and 1, got {share}")
    rate = None if hourly_rate is None else _dec(hourly_rate, "hourly_rate")
    by_title = {t: _dec(r, f"hourly_rate_by_title[{t!r}]") for t, r in (hourly_rate_by_title or {}).items()}
    for label, value in [("hourly_rate", rate), *((f"hourly_rate_by_title[{t!r}]", r) for t, r in by_title.items())]:
        if value is not None and value < 0:
            raise ValueError(f"{label} must not be negative, got {value}")
    require_tables(con, "cost_line", "learning_record")

    notes: list[str] = []
    lines = con.table("cost_line")
    if not use_cost_lines:
        lines = lines.filter(ibis.literal(False))
        notes.append("cost lines from costs.csv are not used (the study says so): participant time only")
    own = lines.filter(lines.program.isin(names)).group_by("category").aggregate(amount=_.amount.sum(), n=_.count())
    by_category = dict.fromkeys(CATEGORIES, _ZERO)
    participant_lines = 0
    for row in own.to_pyarrow().to_pylist():
        category = row["category"]
        if category not in by_category:
            notes.append(f"category {category!r} is not in the contract: counted as other")
            category = "other"
        by_category[category] += _money(row["amount"])
        if category == "participant_time":
            participant_lines += row["n"]

    is_shared = lines.program.isnull() | (lines.program.strip() == "")
    shared = lines.filter(is_shared).aggregate(amount=_.amount.sum())
    shared_total = _money(shared.to_pyarrow().to_pylist()[0]["amount"])
    shared_allocated = _cents(shared_total * share)

    participant_time: tuple[ParticipantTime, ...] = ()
    if participant_lines:
        source = "cost lines"
        notes.append(
            f"participant time taken from {participant_lines} participant_time cost line(s); "
            "not also derived from learning records, to avoid counting it twice"
        )
    else:
        fixed = None if minutes_per_learner is None else _dec(minutes_per_learner, "minutes_per_learner")
        participant_time, time_notes = _participant_time(con, names, learner_keys, rate, by_title,
                                                         tuple(activities or ()), fixed)
        notes += time_notes
        source = "learning records" if participant_time else "none"
        by_category["participant_time"] = sum((p.amount for p in participant_time), _ZERO)

    return CostBreakdown(
        programs=names,
        by_category=by_category,
        participant_time=participant_time,
        participant_time_source=source,
        shared_total=shared_total,
        shared_share=share,
        shared_allocated=shared_allocated,
        total=sum(by_category.values(), _ZERO) + shared_allocated,
        notes=tuple(notes),
    )


def _participant_time(
    con: BaseBackend,
    programs: tuple[str, ...],
    learner_keys: Iterable[str] | None,
    rate: Decimal | None,
    by_title: dict[str, Decimal],
    activities: tuple[str, ...] = (),
    fixed_minutes: Decimal | None = None,
) -> tuple[tuple[ParticipantTime, ...], list[str]]:
    """Participant time costed from learning records, grouped by the title its rate depends on.

    A record is the program's when it names the program, or (``activities``) is one of the
    program's activities or belongs to one of its courses: xAPI records often name no program.
    ``fixed_minutes``: each learner with such a record costs this many minutes, whatever the LMS
    recorded.
    """
    records = con.table("learning_record")
    if activities:
        ours = (records.program.isin(programs) | records.activity_id.isin(activities)
                | records.course_id.isin(activities))
        if learner_keys is not None:
            ours &= records.learner_key.isin(sorted(set(learner_keys)))
        records = records.filter(ours)
    elif learner_keys is None:
        records = records.filter(records.program.isin(programs))
    else:
        keys = sorted(set(learner_keys))
        if not keys:
            return (), ["no learners given: no participant time"]
        records = records.filter(
            records.learner_key.isin(keys) & (records.program.isin(programs) | records.program.isnull())
        )

    grouped: ir.Table
    if by_title:
        require_tables(con, "learner_identity", "crm_user")
        identity = con.table("learner_identity").select("learner_key", "crm_user_id")
        users = con.table("crm_user").select(crm_user_id="user_id", title="title")
        joined = records.left_join(identity, "learner_key").left_join(users, "crm_user_id")
        grouped = joined.group_by("title").aggregate(minutes=_.minutes.sum(), missing=_.minutes.isnull().sum(),
                                                     learners=_.learner_key.nunique())
    else:
        grouped = records.aggregate(title=ibis.null("string"), minutes=_.minutes.sum(),
                                    missing=_.minutes.isnull().sum(), learners=_.learner_key.nunique())
    if fixed_minutes is not None:
        grouped = grouped.mutate(minutes=grouped.learners * float(fixed_minutes), missing=0)

    notes: list[str] = []
    rows = [r for r in grouped.to_pyarrow().to_pylist() if r["minutes"] is not None or r["missing"]]
    missing = sum(int(r["missing"] or 0) for r in rows)
    if missing:
        notes.append(f"{missing} learning record(s) carry no minutes: their time is not costed")
    out: list[ParticipantTime] = []
    uncovered: list[str] = []
    for row in sorted(rows, key=lambda r: (r["title"] is None, r["title"] or "")):
        minutes = _minutes(row["minutes"])
        if minutes == 0:
            continue
        title: str | None = row["title"]
        chosen = by_title.get(title, rate) if title is not None else rate
        if chosen is None:
            uncovered.append("(no title)" if title is None else repr(title))
            continue
        label = title if by_title else None
        out.append(ParticipantTime(label, minutes, chosen, _cents(_div(minutes * chosen, Decimal(60)))))
    if uncovered:
        raise ValueError(
            "participant time must be costed (costs are fully loaded) but no hourly rate covers "
            f"learners with title {', '.join(uncovered)}: give hourly_rate or add them to hourly_rate_by_title"
        )
    return tuple(out), notes
