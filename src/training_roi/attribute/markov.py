"""Markov-chain attribution: how much would conversions drop if a channel did not exist.

Every journey is a path ``(start) → channels in time order → (conversion) or (null)``. Counting
transitions over all paths, won and lost, gives a Markov chain whose probability of reaching
``(conversion)`` from ``(start)`` reproduces the observed conversion rate. A channel's *removal
effect* is the relative drop in that probability when every state involving the channel leads to
``(null)`` instead (Anderl et al., 2016): ``1 − p(without channel) / p``. Conversions are then
shared among channels in proportion to their removal effects.

The chain is that of the R/Python package ChannelAttribution, so results agree with it: for order
``k`` a state is a window of the last ``k`` channels (a journey shorter than ``k`` is one state of
all its channels), and a state repeated back to back is one visit. ChannelAttribution estimates the
probabilities by simulating paths; here they are solved exactly as absorption probabilities of the
chain (one sparse linear system per channel). Identical channel sequences are grouped first, so the
work grows with the number of distinct paths, not journeys.

Journeys with no touch before their close date are left out: no channel can take their credit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import splu

from training_roi.attribute.rules import CONVERTED, GROUP, VALUE, finish, ordered_touches, won_only

__all__ = ["MarkovResult", "markov_fit", "markov_removal", "markov_split"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class MarkovResult:
    """A fitted Markov attribution: per-channel credit, the chain behind it and the per-touch table.

    Attributes
    ----------
    order
        Number of past channels a state remembers.
    conversion_probability
        Probability that a path from ``(start)`` ends in ``(conversion)`` in the full chain.
    channels
        One row per channel: ``channel``, ``removal_effect`` (relative drop in the conversion
        probability when the channel is removed), ``value_removal_effect`` (the same on expected
        revenue, each conversion valued at the average deal value of paths ending in the same
        state, as ChannelAttribution does), ``conversions`` and ``value`` (totals shared in
        proportion to the two removal effects).
    transitions
        The chain: ``from_state``, ``to_state``, ``probability`` (states named ``"a > b"``).
    attribution
        The attribution table (see :mod:`training_roi.attribute.rules`): each won journey's
        credit split over its touches in proportion to the removal effect of each touch's channel,
        so that a touch in a channel the chain cannot do without counts for more; repeated
        touches of one channel each count. None when fitted without it (:func:`markov_fit`).
    """

    order: int
    conversion_probability: float
    channels: pl.DataFrame
    transitions: pl.DataFrame
    attribution: pl.DataFrame | None

    def __str__(self) -> str:
        lines = [f"Markov attribution, order {self.order}; conversion probability "
                 f"{self.conversion_probability:.1%}"]
        for row in self.channels.sort("value", descending=True).iter_rows(named=True):
            lines.append(f"  {row['channel']}: removal effect {row['removal_effect']:.1%}, "
                         f"{row['conversions']:,.1f} conversions, ${row['value']:,.0f}")
        return "\n".join(lines)


def _distinct_paths(ordered: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Identical channel sequences grouped, with their conversions, non-conversions and value."""
    journeys = ordered.group_by(GROUP, maintain_order=True).agg(
        pl.col("channel").cast(pl.Enum(names)).to_physical().cast(pl.Int64).alias("path"),
        pl.col(CONVERTED).first(),
        pl.col(VALUE).first(),
    )
    return journeys.group_by("path").agg(
        pl.col(CONVERTED).sum().cast(pl.Float64).alias("conversions"),
        (~pl.col(CONVERTED)).sum().cast(pl.Float64).alias("nulls"),
        pl.when(pl.col(CONVERTED)).then(pl.col(VALUE)).otherwise(0.0).sum().alias("value"),
    ).sort("path")


def _visits(paths: pl.DataFrame, order: int, n_channels: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each path's sequence of states (ids from 1), and each state's channels (code per slot)."""
    base = n_channels + 1
    if order * np.log2(base) >= 62:
        raise ValueError(f"order {order} with {n_channels} channels has too many possible states; lower the order")
    slots = [f"__slot{j}" for j in range(order)]
    steps = (
        paths.select(pl.int_range(pl.len()).alias("pid"), "path").explode("path")
        .with_columns(pl.int_range(pl.len()).over("pid").alias("pos"), pl.len().over("pid").alias("len"))
        .with_columns(pl.col("path").shift(j).over("pid").alias(slot) for j, slot in enumerate(slots))
        .filter((pl.col("pos") >= order - 1) | ((pl.col("len") < order) & (pl.col("pos") == pl.col("len") - 1)))
        .with_columns(pl.sum_horizontal((pl.col(slot).fill_null(-1) + 1) * base**j for j, slot in enumerate(slots))
                      .alias("key"))
        .with_columns(pl.col("key").rank("dense").cast(pl.Int64).alias("state"))
    )
    states = steps.select("state", *slots).unique("state").sort("state")
    steps = steps.filter(pl.col("state") != pl.col("state").shift(1).over("pid").fill_null(0))
    return steps.select("pid", "state"), states


def _chain(paths: pl.DataFrame, steps: pl.DataFrame, n_states: int) -> tuple[sp.csr_matrix, FloatArray]:
    """Transition probabilities over (start, states…, conversion, null), and value per conversion."""
    conversions, nulls, value = (paths[c].to_numpy() for c in ("conversions", "nulls", "value"))
    pid, state = steps["pid"].to_numpy(), steps["state"].to_numpy()
    first = np.r_[True, pid[1:] != pid[:-1]]
    last = np.r_[pid[1:] != pid[:-1], True]
    previous = np.where(first, 0, np.r_[0, state[:-1]])
    conv, null = n_states + 1, n_states + 2
    rows = np.concatenate([previous, state[last], state[last]])
    cols = np.concatenate([state, np.full(last.sum(), conv), np.full(last.sum(), null)])
    weights = np.concatenate([(conversions + nulls)[pid], conversions[pid[last]], nulls[pid[last]]])
    counts = sp.coo_matrix((weights, (rows, cols)), shape=(n_states + 3, n_states + 3)).tocsr()
    counts.eliminate_zeros()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    probabilities = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)) @ counts
    ended = np.bincount(state[last], weights=conversions[pid[last]], minlength=n_states + 1)
    earned = np.bincount(state[last], weights=value[pid[last]], minlength=n_states + 1)
    per_conversion = np.divide(earned, ended, out=np.zeros_like(earned), where=ended > 0)
    return sp.csr_matrix(probabilities), per_conversion


def _reach(probabilities: sp.csr_matrix, per_conversion: FloatArray, keep: FloatArray) -> FloatArray:
    """Probability of conversion, and expected value, from (start) when states with keep=0 go to null."""
    n = per_conversion.size
    transient = probabilities[:n, :n]
    to_conversion = probabilities[:n, n].toarray().ravel()
    kept = sp.diags(keep) @ transient
    system = (sp.identity(n, format="csc") - kept).tocsc()
    rhs = np.column_stack([keep * to_conversion, keep * to_conversion * per_conversion])
    solution: FloatArray = np.asarray(splu(system).solve(rhs), dtype=np.float64)
    start: FloatArray = solution[0]
    return start


def markov_removal(touches: pl.DataFrame, journeys: pl.DataFrame, *, order: int = 1) -> MarkovResult:
    """Fit the Markov chain of the journeys and credit channels by their removal effects.

    Parameters
    ----------
    touches, journeys
        As for the rule-based models (:mod:`training_roi.attribute.rules`); lost journeys count too,
        as paths to ``(null)``.
    order
        How many past channels a state remembers (1 to 4 in practice; higher orders need many
        journeys per state).

    Returns
    -------
    MarkovResult
        Per-channel removal effects and credit, the chain, and the per-touch attribution table.

    Examples
    --------
    Paths ``A > B`` (won), ``A`` (lost) and ``B`` (won): the chain converts with probability 2/3;
    without ``A`` only the ``B`` path converts (1/3, removal effect 0.5); without ``B`` nothing
    does (removal effect 1). Two conversions are shared 2/3 to ``A`` and 4/3 to ``B``.
    """
    return markov_fit(ordered_touches(touches, journeys, converted_only=False), order=order)


def markov_fit(ordered: pl.DataFrame, *, order: int = 1, per_touch: bool = True) -> MarkovResult:
    """:func:`markov_removal` on touches already ordered (``ordered_touches(..., converted_only=False)``).

    The chain reads only each touch's journey and channel: ``ordered`` may hold those columns
    alone. ``per_touch``: also the per-touch attribution table (millions of rows in a large org);
    without it the result's ``attribution`` is None, for a study that only compares the chain's
    channels or splits the won journeys' touches itself (:func:`markov_split`).
    """
    if not (isinstance(order, int) and order >= 1):
        raise ValueError(f"order must be a positive integer, not {order!r}")
    names = sorted(ordered["channel"].unique().drop_nulls().to_list())
    if ordered["channel"].null_count():
        raise ValueError("touches.channel has missing values; every touch needs a channel")
    paths = _distinct_paths(ordered, names)
    total_conversions, total_value = float(paths["conversions"].sum()), float(paths["value"].sum())
    if total_conversions == 0:
        raise ValueError("no won journey has a touch before its close date: there is nothing to attribute")
    steps, states = _visits(paths, order, len(names))
    n_states = states.height
    probabilities, per_conversion = _chain(paths, steps, n_states)
    full = _reach(probabilities, per_conversion, np.ones(n_states + 1))
    slot_codes = states.drop("state").to_numpy()
    removal, value_removal = np.zeros(len(names)), np.zeros(len(names))
    for code in range(len(names)):
        keep = np.r_[1.0, (~(slot_codes == code).any(axis=1)).astype(float)]
        without = _reach(probabilities, per_conversion, keep)
        removal[code] = 1.0 - without[0] / full[0]
        value_removal[code] = 1.0 - without[1] / full[1] if full[1] > 0 else 0.0
    channels = pl.DataFrame({
        "channel": names,
        "removal_effect": removal,
        "value_removal_effect": value_removal,
        "conversions": total_conversions * removal / removal.sum(),
        "value": total_value * value_removal / value_removal.sum() if value_removal.sum() > 0 else 0.0 * removal,
    })
    fit = MarkovResult(order, float(full[0]), channels, _transitions(probabilities, states, names), None)
    if not per_touch:
        return fit
    return replace(fit, attribution=markov_split(won_only(ordered), fit))


def markov_split(won: pl.DataFrame, fit: MarkovResult) -> pl.DataFrame:
    """The per-touch table of a fitted chain: each won journey's credit in proportion to its channels' removal effects.

    ``won``: the won journeys' touches, ordered (``ordered_touches(..., converted_only=True)`` or
    :func:`~training_roi.attribute.rules.won_only`), every channel among those ``fit`` learnt. The
    chain learns from every journey but credits only won ones, so a study fits it on a narrow
    ordering of all touches and splits only the won journeys' full rows.
    """
    names = fit.channels["channel"].cast(pl.String).to_list()
    unknown = sorted(set(won["channel"].cast(pl.String).unique().drop_nulls().to_list()) - set(names))
    if unknown:
        raise ValueError(f"won touches have channel(s) the chain was not fitted on: {', '.join(unknown)}")
    codes = pl.col("channel").cast(pl.Enum(names)).to_physical()
    weight = codes.replace_strict(list(range(len(names))), fit.channels["removal_effect"].to_list(),
                                  return_dtype=pl.Float64)
    return finish(won, weight / weight.sum().over(GROUP), f"markov_order_{fit.order}")


def _transitions(probabilities: sp.csr_matrix, states: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    labels = states.select(
        pl.concat_str([pl.col(c).replace_strict(list(range(len(names))), names, default=None)
                       for c in states.columns if c != "state"], separator=" > ", ignore_nulls=True)
    ).to_series().to_list()
    labels = ["(start)", *labels, "(conversion)", "(null)"]
    coo = probabilities.tocoo()
    return pl.DataFrame({
        "from_state": [labels[i] for i in coo.row],
        "to_state": [labels[j] for j in coo.col],
        "probability": coo.data,
    }).sort("from_state", "to_state")
