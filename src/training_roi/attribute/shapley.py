"""Shapley attribution: channels as players of a cooperative game whose payout is conversions.

The game is the one of Zhao et al. (2018, "Shapley Value Methods for Attribution Modeling in
Online Advertising"): a coalition ``S`` is a set of channels, and its worth ``v(S)`` is the number
of won journeys (or their revenue) whose set of channels is contained in ``S`` — what those
channels achieved with no help from outside the coalition. A channel's Shapley value is its
marginal contribution ``v(S ∪ {c}) − v(S)`` averaged over every order in which the channels could
join. Here it is computed exactly, over all ``2**n`` coalitions, so ``n`` is capped at 15.

With this worth, Zhao et al. show that the Shapley value reduces to their "simplified Shapley
value": each won journey's credit split equally among the distinct channels it touched. The
per-touch table uses exactly that split (equal per channel, then equal among the channel's touches
in the journey), so summing it per channel gives back the channel Shapley values.

Lost journeys do not enter the worth: credit depends only on what won deals touched, so this is a
fair division of the wins, not a measure of lift (use :mod:`training_roi.attribute.markov`, which
also learns from lost deals, or the isolation methods, for that).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy.special import comb

from training_roi.attribute.rules import GROUP, POSITION, VALUE, finish, ordered_touches

__all__ = ["MAX_CHANNELS", "shapley_channels", "shapley_of_won", "shapley_split", "shapley_touches"]

MAX_CHANNELS = 15
FloatArray = NDArray[np.float64]


def _shapley(worth: FloatArray) -> FloatArray:
    """Exact Shapley values (players × columns) of games given as worth per coalition bitmask."""
    n = int(worth.shape[0]).bit_length() - 1
    masks = np.arange(1 << n)
    sizes = _popcount(masks)
    # Weight of a coalition S not containing the player: |S|! (n − |S| − 1)! / n!.
    weights = 1.0 / (n * comb(n - 1, np.minimum(sizes, n - 1)))  # the full coalition is never 'without'
    values = np.zeros((n, worth.shape[1]))
    for player in range(n):
        without = masks[(masks >> player) & 1 == 0]
        gain = worth[without | (1 << player)] - worth[without]
        values[player] = weights[without] @ gain
    return values


def _popcount(masks: NDArray[np.int64]) -> NDArray[np.int64]:
    counts = np.zeros_like(masks)
    rest = masks.copy()
    while rest.any():
        counts += rest & 1
        rest >>= 1
    return counts


def _coalition_worth(ordered: pl.DataFrame, names: list[str]) -> FloatArray:
    """v(S) for every coalition bitmask S: conversions and value of won journeys with channels ⊆ S."""
    n = len(names)
    codes = ordered["channel"].cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64)
    firsts = ordered[POSITION].to_numpy() == 0
    # A journey's coalition is the OR of its touches' channel bits (its rows are contiguous).
    starts = np.flatnonzero(firsts)
    mask = np.bitwise_or.reduceat(np.left_shift(1, codes), starts) if starts.size else np.zeros(0, np.int64)
    worth = np.zeros((1 << n, 2))
    worth[:, 0] = np.bincount(mask, minlength=1 << n)
    worth[:, 1] = np.bincount(mask, weights=ordered[VALUE].to_numpy()[firsts], minlength=1 << n)
    # Sum over subsets (zeta transform): afterwards worth[S] = Σ over exact sets T ⊆ S.
    for bit in range(n):
        blocks = worth.reshape(-1, 2, 1 << bit, 2)
        blocks[:, 1] += blocks[:, 0]
    return worth


def shapley_channels(touches: pl.DataFrame, journeys: pl.DataFrame) -> pl.DataFrame:
    """Exact Shapley value of each channel in the game of won journeys' channel sets.

    Parameters
    ----------
    touches, journeys
        As for the rule-based models (:mod:`training_roi.attribute.rules`).

    Returns
    -------
    polars.DataFrame
        One row per channel of ``touches``: ``channel``, ``conversions`` and ``value`` (its
        Shapley values for the conversion count and for revenue). They sum to the totals of the won
        journeys with touches; a channel that touched no won journey gets 0.

    Raises
    ------
    ValueError
        When the won journeys touch more than 15 channels: exact values need every coalition
        (channels that touched only lost journeys do not count, being null players).

    Examples
    --------
    Won journeys touching {A} and {A, B}: ``v({A}) = 1``, ``v({B}) = 0``, ``v({A, B}) = 2``, so
    A gets ``(1 + (2 − 0)) / 2 = 1.5`` and B gets ``0.5``.
    """
    won = ordered_touches(touches, journeys, converted_only=True)
    if touches["channel"].null_count():
        raise ValueError("touches.channel has missing values; every touch needs a channel")
    return shapley_of_won(won, touches["channel"].unique().to_list())


def shapley_of_won(won: pl.DataFrame, channels: list[str]) -> pl.DataFrame:
    """:func:`shapley_channels` on the won journeys' touches, already ordered.

    ``won``: from ``ordered_touches(..., converted_only=True)`` or
    :func:`~training_roi.attribute.rules.won_only`. ``channels``: every channel of the touches, won
    or lost, so that a channel of lost journeys alone is listed with 0.
    """
    names = sorted(won["channel"].unique().to_list())
    if len(names) > MAX_CHANNELS:
        raise ValueError(
            f"exact Shapley values need at most {MAX_CHANNELS} channels, but the won journeys touch "
            f"{len(names)}; group channels first (e.g. map every 'training: …' course to 'training')"
        )
    values = _shapley(_coalition_worth(won, names)) if names else np.zeros((0, 2))
    players = pl.DataFrame({"channel": names, "conversions": values[:, 0], "value": values[:, 1]},
                           schema={"channel": pl.String, "conversions": pl.Float64, "value": pl.Float64})
    # Channels that never touched a won deal are null players: their Shapley value is 0.
    idle = sorted(set(channels) - set(names))
    nulls = pl.DataFrame({"channel": idle, "conversions": [0.0] * len(idle), "value": [0.0] * len(idle)},
                         schema=players.schema)
    return pl.concat([players, nulls]).sort("channel")


def shapley_touches(touches: pl.DataFrame, journeys: pl.DataFrame) -> pl.DataFrame:
    """The Shapley attribution table: each won journey split equally per channel, then per touch.

    A journey that touched channels A (twice) and B gives B one half and each A touch one
    quarter. Summed per channel over the table, ``share`` and ``credited_value`` equal the
    channel Shapley values of :func:`shapley_channels` (the simplified Shapley value of Zhao et
    al., 2018); unlike that function this one has no limit on the number of channels.
    """
    return shapley_split(ordered_touches(touches, journeys, converted_only=True))


def shapley_split(won: pl.DataFrame) -> pl.DataFrame:
    """:func:`shapley_touches` on the won journeys' touches already ordered."""
    per_channel = 1.0 / pl.col("channel").n_unique().over(GROUP)
    per_touch = 1.0 / pl.len().over(GROUP, "channel")
    return finish(won, per_channel * per_touch, "shapley")
