"""A study's attribution: the table, its roll-ups, every model side by side, and the lift-calibrated credit.

The supporting table the seed asks for next to the lift: which programs, courses, learners and
other touches each won deal's revenue flows through under the study's model, how the programs
rank under every other model, and — the hybrid — the program's credit held to the incremental
revenue the isolation stage established (:mod:`training_roi.attribute.hybrid`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from ibis.backends import BaseBackend

from training_roi.attribute.hybrid import Calibration, calibrate
from training_roi.attribute.journeys import Journeys, build_journeys, by_row
from training_roi.attribute.markov import MarkovResult, markov_fit, markov_split
from training_roi.attribute.rules import RULES, TOUCH_COLUMNS, ordered_touches, rule_table
from training_roi.attribute.settings import MODELS, Attribution
from training_roi.attribute.shapley import MAX_CHANNELS, shapley_of_won, shapley_split
from training_roi.attribute.split import split_among_learners

__all__ = ["AttributionResult", "attribute_study"]

_LABELS = {
    "first_touch": "first touch", "last_touch": "last touch", "linear": "linear (equal weight)",
    "time_decay": "time decay", "position_based": "position based", "markov": "Markov removal effect",
    "shapley": "Shapley value",
}

TOP_LEARNERS = 100
"""Learners listed in result.json and the HTML report (every one is in the attribution file)."""


@dataclass(frozen=True, eq=False)
class AttributionResult:
    """The attribution of a study's won deals to touches, under its model and all the others."""

    model: str
    settings: Attribution
    lookback_days: int
    since: date | None
    counts: dict[str, int]
    calibration: Calibration
    table: pl.DataFrame = field(repr=False)
    """One row per touch of a won deal under the study's model: opportunity, touch, what it is,
    ``share``, ``credited_value`` (raw) and ``calibrated_value`` (held to the lift). Its names
    (unit, kind, channel, learner, activity, course, program) are categorical."""
    by_channel: pl.DataFrame = field(repr=False)
    by_course: pl.DataFrame = field(repr=False)
    by_learner: pl.DataFrame = field(repr=False)
    comparison: pl.DataFrame = field(repr=False)
    """One row per channel: its credited revenue and rank under every model, and the rank spread."""
    markov: pl.DataFrame | None = field(default=None, repr=False)
    """Per channel: removal effect and credit of the Markov chain."""
    notes: tuple[str, ...] = ()

    def asdict(self) -> dict[str, Any]:
        """The ``attribution`` section of the result document."""
        def rows(frame: pl.DataFrame | None, limit: int | None = None) -> list[dict[str, Any]]:
            if frame is None:
                return []
            return [_plain(r) for r in (frame.head(limit) if limit else frame).iter_rows(named=True)]

        c = self.calibration
        return {
            "model": self.model, "label": _LABELS[self.model], "lookback_days": self.lookback_days,
            "deals_closing_from": self.since.isoformat() if self.since else None,
            "counts": self.counts,
            "calibration": {"program_channel": c.program_channel, "raw_program_value": c.raw_program_value,
                            "raw_other_training_value": c.raw_other_training_value,
                            "incremental_revenue": c.incremental_revenue, "factor": c.factor,
                            "calibrated_program_value": c.calibrated_program_value},
            "by_channel": rows(self.by_channel), "by_course": rows(self.by_course),
            "by_learner": rows(self.by_learner, TOP_LEARNERS), "learners": self.by_learner.height,
            "comparison": rows(self.comparison), "markov": rows(self.markov), "notes": list(self.notes),
        }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in row.items()}


def _model(name: str, won: pl.DataFrame, a: Attribution, fit: MarkovResult | None) -> pl.DataFrame:
    """Model ``name``'s attribution table, from the won journeys' ordered touches (and the chain, for Markov)."""
    if name in RULES:
        return rule_table(won, name, half_life_days=a.half_life_days, first=a.first_share, last=a.last_share)
    if name == "markov":
        assert fit is not None  # a study that credits by the chain fits it first
        return markov_split(won, fit)
    if name == "shapley":
        return shapley_split(won)
    raise ValueError(f"attribution model {name!r}: expected one of {', '.join(MODELS)}")


def _split(table: pl.DataFrame, a: Attribution, several: pl.Series) -> pl.DataFrame:
    """The study's learner split, on the deals with ``several`` learners (a deal with one it leaves as it is)."""
    if several.is_empty() or table.height == 0:
        return table
    shared = pl.col("journey_id").is_in(several.implode())
    split = split_among_learners(table.filter(shared), rule=a.learner_split, role_weights=a.role_weights or None)
    return pl.concat([table.filter(~shared), split])


def _by(table: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Touches, deals, raw and calibrated credit per ``keys``, largest calibrated then raw first."""
    out = table.group_by(keys).agg(
        pl.len().alias("touches"), pl.col("journey_id").n_unique().alias("deals"),
        pl.col("credited_value").sum().round(2).alias("credited_value"),
        pl.col("calibrated_value").sum().round(2).alias("calibrated_value"),
    ).with_columns(pl.col(keys).cast(pl.String))
    return out.sort(["calibrated_value", "credited_value", *keys], descending=[True, True, *([False] * len(keys))],
                    nulls_last=True)


def _comparison(won: pl.DataFrame, a: Attribution, tables: dict[str, pl.DataFrame],
                fit: MarkovResult, several: pl.Series) -> tuple[pl.DataFrame, list[str]]:
    """Every model's credit per channel, ranks and rank spread; notes."""
    notes: list[str] = []
    columns: list[pl.DataFrame] = []
    for name in MODELS:
        if name == "markov":
            per = fit.channels.select(pl.col("channel").cast(pl.String), pl.col("value").alias(name))
        elif name == "shapley":
            try:
                # The chain's channels are every channel of the touches: the lost journeys' alone get 0.
                shapley = shapley_of_won(won, fit.channels["channel"].to_list())
                per = shapley.select(pl.col("channel").cast(pl.String), pl.col("value").alias(name))
            except ValueError:  # more channels than exact Shapley values can enumerate
                notes.append(f"Shapley values per channel need at most {MAX_CHANNELS} channels; this data has "
                             "more, so the comparison shows the per-touch simplified Shapley split instead")
                table = tables[name] if name in tables else _split(_model(name, won, a, fit), a, several)
                per = table.group_by(pl.col("channel").cast(pl.String)).agg(pl.col("credited_value").sum().alias(name))
        else:
            table = tables[name] if name in tables else _split(_model(name, won, a, fit), a, several)
            per = table.group_by(pl.col("channel").cast(pl.String)).agg(pl.col("credited_value").sum().alias(name))
        columns.append(per)
    merged = columns[0]
    for per in columns[1:]:
        merged = merged.join(per, on="channel", how="full", coalesce=True)
    merged = merged.with_columns(pl.col(m).fill_null(0.0).round(2) for m in MODELS)
    ranks = [pl.col(m).rank("min", descending=True).cast(pl.Int32).alias(f"{m}_rank") for m in MODELS]
    merged = merged.with_columns(ranks)
    rank_cols = [f"{m}_rank" for m in MODELS]
    merged = merged.with_columns((pl.max_horizontal(rank_cols) - pl.min_horizontal(rank_cols)).alias("rank_spread"))
    return merged.sort([a.model, "channel"], descending=[True, False]), notes


def attribute_study(con: BaseBackend, settings: Attribution, *, program: str, activities: Sequence[str],
                    unit: str, window_days: int, since: date | None, incremental_revenue: float,
                    scope: list[str] | None = None, model: str | None = None,
                    compare: bool = True, deal_types: Sequence[str] = ()) -> AttributionResult:
    """Attribute a program's won deals to their touches and hold training's credit to the lift.

    ``settings``: the study's attribution settings; ``program`` and ``activities``: the program's
    name (its channel) and activity ids; ``unit``: ``rep`` or ``account``; ``window_days``: the
    primary attribution window (the lookback unless the settings name one); ``since``: deals
    count when they close from this day on (the program's start, or its first training).
    ``incremental_revenue``: the isolation stage's credited incremental revenue (0 when the
    effect is not established). ``scope``: the study's units (None = every unit with deals).
    ``model``: overrides ``settings.model``. ``compare``: run every model for the comparison.
    ``deal_types``: only deals of these types (``Type``) are attributed; all when empty.
    """
    a = settings
    chosen = model or a.model
    if chosen not in MODELS:
        raise ValueError(f"attribution model {chosen!r}: expected one of {', '.join(MODELS)}")
    lookback = a.lookback_days or window_days
    j: Journeys = build_journeys(
        con, unit=unit, scope=scope, lookback_days=lookback, since=since, deal_types=deal_types,
        activities=None if a.all_programs else list(activities), crm_touches=a.crm_touches,
        named={program: list(activities)},
    )
    found, sources, deals = j.counts, j.sources, j.journeys
    touches = j.touches
    del j  # millions of touches: each copy is let go as soon as the next is made
    facts = deals.select("journey_id", "converted", "value", "conversion_at")
    # The chain learns from every journey, lost ones too, but only from each one's channels in time
    # order: it is fitted on a narrow ordering of every touch, let go as soon as the chain is solved.
    fit = None
    if compare or chosen == "markov":
        every = ordered_touches(touches.select(TOUCH_COLUMNS), facts, converted_only=False)
        fit = markov_fit(every, order=a.markov_order, per_touch=False)
        del every
    # Every model credits only won journeys: their touches alone take the learner and role, which
    # ride along for the split (channels stay categorical until the table is written out).
    won_deal = deals["converted"].fill_null(False).to_numpy()
    touches = touches.filter(pl.Series(won_deal[touches["journey_id"].to_numpy()]))
    who = sources.select(pl.col("learner").cast(pl.Categorical).alias("learner_key"),
                         pl.col("role").cast(pl.Categorical))
    touches = pl.concat([touches, by_row(who, touches["source_id"])], how="horizontal")
    # The deals where several learners trained (an account's contacts, a rep with two LMS identities):
    # only there does the learner split change anything.
    several = (touches.filter(pl.col("learner_key").is_not_null()).group_by("journey_id")
               .agg(pl.col("learner_key").n_unique().alias("n")).filter(pl.col("n") > 1)["journey_id"])
    won = ordered_touches(touches, facts, converted_only=True)
    del touches
    table = _split(_model(chosen, won, a, fit), a, several)
    program_channel = f"training: {program}"
    table, calibration = calibrate(table, program_channel=program_channel, incremental_revenue=incremental_revenue)
    # Journeys are numbered in opportunity-id order and touches in time order within them. Sorted
    # before the comparison sums it, so that the sums add in the table's own order on every run.
    table = table.sort(["journey_id", "touch_id"])
    comparison, notes = (_comparison(won, a, {chosen: table}, fit, several)
                         if compare and fit is not None else (pl.DataFrame(), []))
    markov = fit.channels.with_columns(pl.col("channel").cast(pl.String)) if fit is not None else None
    del won, fit
    # Millions of rows repeat a few thousand names: they stay categorical (codes), as the text the
    # file shows, instead of a copy of every string per touch.
    dims = sources.select(pl.col("learner_name", "activity_id", "activity_name", "course_id", "course_name",
                                 "program").cast(pl.Categorical), "source_key")
    of_deal = deals.select("opportunity_id", pl.col("unit_id").cast(pl.Categorical), "value")
    table = (pl.concat([table, by_row(dims, table["source_id"]), by_row(of_deal, table["journey_id"])],
                       how="horizontal")
             .rename({"learner_key": "learner"})
             .select("opportunity_id", "unit_id", "value", "touch_at", "days_before", "kind", "channel",
                     "learner", "learner_name", "role", "activity_id", "activity_name", "course_name", "program",
                     "source_key",
                     "model", "share", "credited_value", "calibrated_value", "journey_id", "touch_id")
             .drop("touch_id"))
    by_channel = _by(table, ["kind", "channel"])
    training = table.filter(pl.col("kind") == "training")
    by_course = _by(training.with_columns(pl.col("course_name").fill_null(pl.col("activity_name"))),
                    ["channel", "course_name"])
    by_learner = _by(training, ["learner", "learner_name"])
    counts = {**found, "attributed_touches": table.height,
              "attributed_deals": table["opportunity_id"].n_unique() if table.height else 0}
    return AttributionResult(chosen, a, lookback, since, counts, calibration, table.drop("journey_id"),
                             by_channel, by_course, by_learner, comparison, markov, tuple(notes))
