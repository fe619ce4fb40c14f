"""Touches and journeys written as short tuples, for the attribution models' tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
UTC_US = pl.Datetime("us", "UTC")


def at(day: float) -> datetime:
    """The moment ``day`` days after 2024-01-01 (UTC)."""
    return DAY0 + timedelta(days=day)


def frames(journeys: list[tuple[str, bool, float, float]],
           touches: list[tuple[str, str, float, str]],
           **extra: list[object]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Touches and journeys frames from tuples.

    ``journeys`` as (journey_id, converted, value, close day); ``touches`` as (journey_id,
    touch_id, day, channel); ``extra`` touch columns (learner_key=[…], …) ride along.
    """
    t = pl.DataFrame(
        {"journey_id": [r[0] for r in touches], "touch_id": [r[1] for r in touches],
         "touch_at": [at(r[2]) for r in touches], "channel": [r[3] for r in touches], **extra},
        schema_overrides={"journey_id": pl.String, "touch_id": pl.String, "touch_at": UTC_US, "channel": pl.String},
    )
    j = pl.DataFrame(
        {"journey_id": [r[0] for r in journeys], "converted": [r[1] for r in journeys],
         "value": [float(r[2]) for r in journeys], "conversion_at": [at(r[3]) for r in journeys]},
        schema_overrides={"journey_id": pl.String, "converted": pl.Boolean, "value": pl.Float64,
                          "conversion_at": UTC_US},
    )
    return t, j


def shares(table: pl.DataFrame) -> dict[str, float]:
    """touch_id → share, for comparing with hand-written expectations."""
    return dict(zip(table["touch_id"].to_list(), table["share"].to_list(), strict=True))
