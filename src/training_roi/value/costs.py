"""Fully loaded cost of a program: its cost lines, participant time and a share of shared costs.

Costs are *fully loaded*: leaving out participant wages, platform fees or administration makes an
ROI look better than it is. The facts come from the warehouse through
:mod:`training_roi.measure.costs`; here they become money:

* the program's own cost lines, summed per category of the contract; a program name that matches
  no line is an error naming the programs the lines do name (the closest first), and the lines
  left out (other programs', shared lines not allocated) are listed;
* participant time: each participant's minutes counted **once**, from the first source that holds
  any (sessions, then the completion's total time, then the completion report; see
  :mod:`training_roi.measure.costs`), or a fixed time per learner, / 60 × an hourly rate (one
  rate, or one per CRM title) — unless ``costs.csv`` already lists ``participant_time`` lines,
  which are then used alone so the time is not counted twice. With no rate at all and
  ``cost_time=False`` (a study that gives no hourly rate) the time is *not costed*, and says so:
  the breakdown's source is ``"not costed"``, its ``uncosted_minutes`` hold the learning time left
  out and a note tells the reader that the cost is not fully loaded;
* shared lines (no program) × the program's share of them.

Money is ``Decimal``: the warehouse sums ``decimal(18, 2)`` exactly; the two derived amounts
(participant time, shared allocation) are rounded once each to the cent, half up, so every
figure and the total are exact sums of cents.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import polars as pl
from ibis.backends import BaseBackend

from training_roi._format import plural
from training_roi.measure.costs import TIME_SOURCES, cost_lines, participant_minutes
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
        ``"cost lines"``, ``"learning records"``, ``"none"`` (no time recorded) or ``"not costed"``
        (time recorded but no hourly rate given: left out of the total, :attr:`uncosted_minutes`).
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
    time_sources: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    """Where each participant's minutes came from: source → (participants, minutes). Sources are
    ``sessions``, ``completion``, ``report`` (:data:`~training_roi.measure.costs.TIME_SOURCES`),
    ``fixed`` (the study's minutes per learner) and ``none`` (no time recorded, none costed)."""
    excluded: dict[str, Decimal] = field(default_factory=dict)
    """Cost lines in costs.csv that this cost leaves out: other programs' lines by program, and the
    shared lines' part not allocated (``(shared, not allocated)``)."""
    participants: pl.DataFrame | None = field(default=None, compare=False, repr=False)
    """One row per participant: ``person``, ``title``, ``minutes`` costed and their ``source``."""
    uncosted_minutes: Decimal | None = None
    """Minutes of learning recorded but not costed because no hourly rate was given (``None`` when
    participant time was costed or came from cost lines)."""

    @property
    def time_costed(self) -> bool:
        """Whether the participants' time is in the total (False: recorded time left out, no rate given)."""
        return self.participant_time_source != "not costed"

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
            "participant_time_costed": self.time_costed,
            "uncosted_minutes": None if self.uncosted_minutes is None else str(self.uncosted_minutes),
            "shared_total": str(self.shared_total),
            "shared_share": str(self.shared_share),
            "shared_allocated": str(self.shared_allocated),
            "total": str(self.total),
            "time_sources": {k: {"participants": n, "minutes": str(m)} for k, (n, m) in self.time_sources.items()},
            "excluded": [{"name": k, "amount": str(v)} for k, v in self.excluded.items()],
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
        lines += [f"time of {plural(n, 'participant')} from {source}: {m:,.0f} minutes"
                  for source, (n, m) in self.time_sources.items()]
        lines += [f"left out: {name} {amount:,.2f}" for name, amount in self.excluded.items()]
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
    time: Literal["recorded", "fixed"] = "recorded"
    """``recorded``: each participant's recorded minutes, ``minutes_per_learner`` for those with none;
    ``fixed``: ``minutes_per_learner`` for everyone."""
    hourly_rate: Decimal | None = None
    hourly_rate_by_title: dict[str, Decimal] | None = None
    shared_share: Decimal = Decimal(0)
    employees_only: bool = False
    """Only employees' learning time is a cost (customer education with no rate for customers)."""
    cost_time: bool = True
    """Whether the participants' time is costed; False when the study gives no hourly rate at all (the
    breakdown then says the time is not costed, never silently)."""


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
    time: Literal["recorded", "fixed"] | None = None,
    cost_time: bool = True,
) -> CostBreakdown:
    """The fully loaded cost of ``programs`` from the warehouse.

    Parameters
    ----------
    con
        The warehouse (any Ibis backend) with ``cost_line`` and ``learning_record``, and
        ``learner_identity`` and ``crm_user`` for who the participants are and their titles.
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
        Minutes a participant's learning is costed at when the LMS recorded none for them
        (``time="recorded"``), or for everyone (``time="fixed"``: a policy figure finance prefers).
    time
        ``recorded`` or ``fixed``; by default ``fixed`` when ``minutes_per_learner`` is given, else
        ``recorded``.
    cost_time
        False: the participants' time is not costed (no rate is given); the minutes recorded are
        counted into ``uncosted_minutes`` and a note says the cost is not fully loaded. Ignored when
        ``costs.csv`` lists participant time.

    Raises
    ------
    ValueError
        When no cost line names any of ``programs`` while cost lines name other programs (the
        message lists them, the closest first), when learning time must be costed (``cost_time``)
        but no rate covers some of it, or an argument is out of range.
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
    fixed = None if minutes_per_learner is None else _dec(minutes_per_learner, "minutes_per_learner")
    mode = time or ("fixed" if fixed is not None else "recorded")
    if mode == "fixed" and fixed is None:
        raise ValueError("a fixed time per learner needs minutes_per_learner")
    require_tables(con, "cost_line", "learning_record", "learner_identity", "crm_user")

    notes: list[str] = []
    lines = cost_lines(con)
    if use_cost_lines:
        _check_names(names, lines)
    else:
        notes.append("cost lines from costs.csv are not used (the study says so): participant time only")
        lines = lines.clear()
    by_category = dict.fromkeys(CATEGORIES, _ZERO)
    participant_lines = 0
    excluded: dict[str, Decimal] = {}
    for row in lines.iter_rows(named=True):
        program, category, amount = row["program"], row["category"], _money(row["amount"])
        if program is None:
            continue
        if program not in names:
            excluded[program] = excluded.get(program, _ZERO) + amount
            continue
        if category not in by_category:
            notes.append(f"category {category!r} is not in the contract: counted as other")
            category = "other"
        by_category[category] += amount
        if category == "participant_time":
            participant_lines += int(row["lines"])
    shared_total = sum((_money(r["amount"]) for r in lines.filter(pl.col("program").is_null()).iter_rows(named=True)),
                       _ZERO)
    shared_allocated = _cents(shared_total * share)
    if shared_total - shared_allocated:
        excluded["(shared, not allocated)"] = shared_total - shared_allocated

    participant_time: tuple[ParticipantTime, ...] = ()
    sources: dict[str, tuple[int, Decimal]] = {}
    people = None
    uncosted: Decimal | None = None
    if participant_lines:
        source = "cost lines"
        notes.append(
            f"participant time taken from {plural(participant_lines, 'participant_time cost line')}; "
            "not also derived from learning records, to avoid counting it twice"
        )
    else:
        people = participant_minutes(con, programs=names, activities=tuple(activities or ()),
                                     learner_keys=learner_keys)
        people, sources, time_notes = _costed_minutes(people, mode, fixed)
        if cost_time or people.is_empty():  # nobody whose time is the company's: nothing is left uncosted
            notes += time_notes
            participant_time = _priced(people, rate, by_title)
            source = "learning records" if participant_time else "none"
            by_category["participant_time"] = sum((p.amount for p in participant_time), _ZERO)
        else:
            source = "not costed"
            uncosted, note = _not_costed(people)
            notes.insert(0, note)

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
        time_sources=sources,
        excluded=dict(sorted(excluded.items())),
        participants=people,
        uncosted_minutes=uncosted,
    )


def _not_costed(people: pl.DataFrame) -> tuple[Decimal, str]:
    """The minutes recorded that are left out of the cost, and the note that says so."""
    timed = people.filter(pl.col("minutes").is_not_null() & (pl.col("minutes") > 0))
    minutes = _minute_total(float(timed["minutes"].sum())) if timed.height else _ZERO
    hours = _div(minutes, Decimal(60))
    if not timed.height:
        return minutes, ("participant time is not costed (the study gives no hourly rate) and the LMS recorded none "
                         "for the participants; set costs.participant_time.hourly_rate and "
                         "costs.participant_time.minutes_per_learner to cost it")
    return minutes, (
        f"participant time is not costed (the study gives no hourly rate): {hours:,.1f} hours of learning "
        f"recorded for {plural(timed.height, 'participant')} are left out, so the cost is not fully loaded and the "
        "ROI is higher than it would be; set costs.participant_time.hourly_rate (or hourly rates per CRM title "
        "under costs.participant_time.hourly_rate_by_role) to cost it"
    )


def _check_names(names: tuple[str, ...], lines: pl.DataFrame) -> None:
    """Refuse program names that match no cost line while the lines name other programs."""
    present = sorted({str(p) for p in lines["program"].drop_nulls()})
    if not present or set(names) & set(present):
        return
    closest = difflib.get_close_matches(names[0], present, n=len(present), cutoff=0.0)
    raise ValueError(
        f"no cost line in costs.csv names the program {', '.join(repr(n) for n in names)}; the lines name "
        f"{', '.join(repr(p) for p in closest)} (the closest first): correct the program's name, or list the "
        "names to count under costs.programs"
    )


def _costed_minutes(people: pl.DataFrame, mode: str,
                    fixed: Decimal | None) -> tuple[pl.DataFrame, dict[str, tuple[int, Decimal]], list[str]]:
    """The minutes each participant is costed at, and where they came from: source → (participants, minutes).

    A participant whose courses were reported by different sources counts under each of them.
    """
    notes: list[str] = []
    if mode == "fixed":
        assert fixed is not None
        people = people.with_columns(pl.lit(float(fixed)).alias("minutes"), pl.lit("fixed").alias("source"),
                                     *(pl.lit(None, pl.Float64).alias(name) for name in TIME_SOURCES))
    elif fixed is not None:
        people = people.with_columns(
            pl.when(pl.col("source").is_null()).then(pl.lit("fixed")).otherwise(pl.col("source")).alias("source"),
            pl.col("minutes").fill_null(float(fixed)))
    people = people.with_columns(pl.col("source").fill_null("none"))
    sources: dict[str, tuple[int, Decimal]] = {}
    for name in TIME_SOURCES:
        used = people.filter(pl.col(name).is_not_null())
        if used.height:
            sources[name] = (used.height, _minute_total(float(used[name].sum())))
    for name in ("fixed", "none"):
        used = people.filter(pl.col("source") == name)
        if used.height:
            sources[name] = (used.height, _minute_total(float(used["minutes"].sum())) if name == "fixed" else _ZERO)
    if "none" in sources:
        n = sources["none"][0]
        notes.append(f"{plural(n, 'participant')} {'has' if n == 1 else 'have'} no learning time recorded: their "
                     "time is not costed (set costs.participant_time.minutes_per_learner to cost it)")
    return people.select("person", "title", "minutes", "source"), dict(sorted(sources.items())), notes


def _minute_total(value: float | None) -> Decimal:
    """Minutes summed in Polars (a float) as a ``Decimal`` to the minute's millionth."""
    if value is None:
        return _ZERO
    exact = Decimal(repr(float(value))).quantize(Decimal("0.000001")).normalize()
    return Decimal(format(exact, "f"))  # 60, not 6E+1


def _priced(people: pl.DataFrame, rate: Decimal | None, by_title: dict[str, Decimal]) -> tuple[ParticipantTime, ...]:
    """Participant time grouped by the title its rate depends on, each group rounded once to the cent."""
    timed = people.filter(pl.col("minutes").is_not_null() & (pl.col("minutes") > 0))
    if by_title:
        grouped = timed.group_by("title").agg(pl.col("minutes").sum())
    else:
        grouped = timed.select(pl.lit(None, pl.String).alias("title"), pl.col("minutes").sum())
    out: list[ParticipantTime] = []
    uncovered: list[str] = []
    for row in sorted(grouped.iter_rows(named=True), key=lambda r: (r["title"] is None, r["title"] or "")):
        minutes = _minute_total(row["minutes"])
        if minutes == 0:
            continue
        title: str | None = row["title"]
        chosen = by_title.get(title, rate) if title is not None else rate
        if chosen is None:
            uncovered.append("(no title)" if title is None else repr(title))
            continue
        out.append(ParticipantTime(title if by_title else None, minutes, chosen,
                                   _cents(_div(minutes * chosen, Decimal(60)))))
    if uncovered:
        raise ValueError(
            "participant time must be costed (costs are fully loaded) but no hourly rate covers "
            f"learners with title {', '.join(uncovered)}: set costs.participant_time.hourly_rate (the rate of every "
            "title not listed) or add the titles under costs.participant_time.hourly_rate_by_role"
        )
    return tuple(out)
