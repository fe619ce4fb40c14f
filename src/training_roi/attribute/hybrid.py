"""The hybrid the seed recommends: multi-touch attribution held to the incremental lift.

A multi-touch model shares every won deal's revenue among the touches before it, so training
that merely *preceded* a deal the rep would have won anyway still collects credit: summed over
deals, the raw attribution to a program routinely exceeds what the program caused. The
isolation stage measured what it caused (incremental revenue, with a comparison group). This
module scales each program's attributed credit so that the revenue credited to training never
exceeds that figure:

- the study's program: its raw credit × min(1, incremental revenue / raw credit) — the
  attribution then says *through which deals, courses and learners* the incremental revenue
  flowed, and never more of it than the lift supports;
- any other training program: 0, because no lift was established for it (its raw credit is
  still shown, labelled as such);
- touches that are not training (campaigns, deal activities) keep their raw credit: the lift
  says nothing about them.

When the program's effect was not established, the calibrated training credit is zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Calibration", "calibrate"]


@dataclass(frozen=True)
class Calibration:
    """How the raw training credit was held to the incremental revenue."""

    program_channel: str
    raw_program_value: float
    """Revenue the model credits to the study's program, before calibration."""
    raw_other_training_value: float
    """Revenue the model credits to other training programs (calibrated to 0: no lift for them)."""
    incremental_revenue: float
    """The isolation stage's incremental revenue (0 when the effect is not established)."""
    factor: float
    """The scale applied to the program's touches: min(1, incremental / raw), 0 without credit."""

    @property
    def calibrated_program_value(self) -> float:
        """The program's credit after calibration: never above the incremental revenue."""
        return self.raw_program_value * self.factor


def calibrate(table: pl.DataFrame, *, program_channel: str, incremental_revenue: float) -> tuple[pl.DataFrame,
                                                                                                    Calibration]:
    """Add ``calibrated_value`` to an attribution table (see the module's rules).

    ``table`` needs ``kind``, ``channel`` and ``credited_value``; ``incremental_revenue`` below
    zero counts as zero (training is not charged with lost revenue through attribution).
    """
    channel = pl.col("channel").cast(pl.String)
    is_program = (pl.col("kind").cast(pl.String) == "training") & (channel == program_channel)
    other = (pl.col("kind").cast(pl.String) == "training") & (channel != program_channel)
    sums = table.select(
        pl.col("credited_value").filter(is_program).sum().alias("program"),
        pl.col("credited_value").filter(other).sum().alias("other"),
    ).row(0)
    raw = float(sums[0] or 0.0)
    incremental = max(float(incremental_revenue), 0.0)
    factor = min(1.0, incremental / raw) if raw > 0 else 0.0
    out = table.with_columns(
        pl.when(is_program).then(pl.col("credited_value") * factor)
        .when(other).then(pl.lit(0.0))
        .otherwise(pl.col("credited_value")).alias("calibrated_value"))
    return out, Calibration(program_channel, raw, float(sums[1] or 0.0), incremental, factor)
