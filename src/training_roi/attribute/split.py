"""Several learners on one deal: credit the training once, split among them.

When three people of one account took the course and the account's deal was won, a per-touch
model credits each learner's touches, and summing the credit per learner across programmes can
count the deal's training share three times over in a report that adds learners up. This module
re-splits the *training share* of each journey among its learners, so the account's training is
credited once: the journey's total share (and credited value) is unchanged, only its division
between learners moves.
"""

from __future__ import annotations

import math
from typing import Literal

import polars as pl

__all__ = ["check_role_weights", "split_among_learners"]

SplitRule = Literal["equal", "recency", "role"]

_TRAINING = "__training_share"
_LEARNER = "__learner_weight"
_OWN = "__learner_share"
_OWN_COUNT = "__learner_touches"
_JOURNEY_VALUE = "__journey_value"
_J = "__journey"
_L = "__learner"


def check_role_weights(role_weights: dict[str, float] | None, *, rule: str = "rule='role'") -> None:
    """Refuse role weights that a split by role cannot use: none at all, or one that is not a positive number.

    ``rule``: how the caller names the split by role in the message (a study says ``learner_split: role``).
    """
    if not role_weights:
        raise ValueError(f"{rule} needs role_weights, e.g. {{'Account Executive': 2.0, 'Sales Manager': 1.0}}")
    bad = {role: weight for role, weight in role_weights.items() if not (weight > 0 and math.isfinite(weight))}
    if bad:
        raise ValueError(f"role_weights must be positive numbers; not so for {bad}")


def _learner_weights(learners: pl.DataFrame, rule: SplitRule, role_weights: dict[str, float] | None) -> pl.Expr:
    if rule == "equal":
        return pl.lit(1.0)
    if rule == "recency":
        return 2.0 ** (-pl.col("__rank").cast(pl.Float64))
    check_role_weights(role_weights)
    assert role_weights is not None  # checked: not empty
    unknown = sorted(set(learners["__role"].drop_nulls().unique()) - set(role_weights))
    if unknown or learners["__role"].null_count():
        named = unknown + (["(no role)"] if learners["__role"].null_count() else [])
        raise ValueError(f"role_weights has no weight for the role(s) {', '.join(map(repr, named))}")
    return pl.col("__role").replace_strict(role_weights, return_dtype=pl.Float64)


def split_among_learners(table: pl.DataFrame, *, rule: SplitRule = "equal",
                         role_weights: dict[str, float] | None = None) -> pl.DataFrame:
    """Re-split each journey's training share among its learners, crediting the training once.

    Training touches are the rows with a ``learner_key``. For each journey, let ``T`` be the sum of
    its training rows' shares. Learner ``l`` receives ``T × w_l / Σ w`` where the weights are:

    - ``"equal"``: ``w_l = 1`` (each learner gets the same part);
    - ``"recency"``: learners ranked by their latest touch in the journey, most recent first
      (ties by ``learner_key``), ``w_l = 2 ** -rank``: the most recent learner weighs 1, the
      next 1/2, then 1/4…;
    - ``"role"``: ``w_l = role_weights[role]``, the role being the ``role`` column of the
      learner's latest touch in the journey.

    A learner's part is spread over their own touches in proportion to the shares the model gave
    them (equally when the model gave them nothing). Rows without a learner keep their share.
    Each journey's total share and total credited value are therefore unchanged.

    Parameters
    ----------
    table
        An attribution table (from :func:`training_roi.attribute.linear` and the like) with the
        columns ``journey_id``, ``touch_at``, ``learner_key``, ``share``, ``credited_value``, and
        ``role`` when ``rule`` is ``"role"``.
    rule
        How the training share is divided among learners.
    role_weights
        Weight per role, for ``rule="role"``; every role present needs a positive weight.

    Returns
    -------
    polars.DataFrame
        The same rows and columns in the same order, with ``share`` and ``credited_value`` re-split.
    """
    if rule not in ("equal", "recency", "role"):
        raise ValueError(f"rule must be 'equal', 'recency' or 'role', not {rule!r}")
    needed = ["journey_id", "touch_at", "learner_key", "share", "credited_value"] + (["role"] if rule == "role" else [])
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise ValueError(f"the attribution table lacks the column(s) {', '.join(missing)} needed to split by {rule}")
    # Roles and learners may arrive as categoricals: compare them as text.
    role = pl.col("role").cast(pl.String).sort_by("touch_at").last() if rule == "role" else pl.lit(None, pl.String)
    # Integer keys: grouping, sorting and joining on them is several times faster than on strings.
    keyed = table.with_columns(
        pl.col("journey_id").cast(pl.String).rank("dense").alias(_J),
        pl.col("learner_key").cast(pl.String).rank("dense").alias(_L),
    )
    learners = (
        keyed.filter(pl.col(_L).is_not_null())
        .group_by(_J, _L)
        .agg(
            pl.col("touch_at").max().alias("__latest"),
            role.alias("__role"),
            pl.col("share").sum().alias(_OWN),
            pl.len().alias(_OWN_COUNT),
        )
        .sort([_J, "__latest", _L], descending=[False, True, False])
        .with_columns(pl.int_range(pl.len()).over(_J).alias("__rank"))
    )
    learners = learners.with_columns(_learner_weights(learners, rule, role_weights).alias(_LEARNER))
    learners = learners.select(
        _J, _L, _OWN, _OWN_COUNT, (pl.col(_LEARNER) / pl.col(_LEARNER).sum().over(_J)).alias(_LEARNER)
    )
    training = pl.col(_L).is_not_null()
    moved = training & (pl.col(_TRAINING) > 0)  # a journey whose training got nothing has nothing to split
    within = (
        pl.when(pl.col(_OWN) > 0).then(pl.col("share") / pl.col(_OWN)).otherwise(1.0 / pl.col(_OWN_COUNT))
    )
    resplit = (
        keyed.join(learners, on=[_J, _L], how="left", maintain_order="left")
        .with_columns(
            pl.when(training).then(pl.col("share")).otherwise(0.0).sum().over(_J).alias(_TRAINING),
            (pl.col("credited_value").sum().over(_J) / pl.col("share").sum().over(_J)).alias(_JOURNEY_VALUE),
        )
        .with_columns(
            pl.when(moved).then(pl.col(_TRAINING) * pl.col(_LEARNER) * within).otherwise(pl.col("share"))
            .alias("share")
        )
        .with_columns(
            pl.when(moved).then(pl.col("share") * pl.col(_JOURNEY_VALUE)).otherwise(pl.col("credited_value"))
            .alias("credited_value")
        )
    )
    return resplit.select(table.columns)
