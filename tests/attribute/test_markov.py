"""Markov removal effects: chains solved by hand, and agreement with ChannelAttribution."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.attribute.journey_frames import frames, shares
from training_roi.attribute import markov_removal


def _paths(*paths: tuple[str, bool, float]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Journeys from ("A > B", won, value): one touch per channel, a day apart, closing on day 30."""
    journeys = [(f"J{i}", won, value, 30) for i, (_, won, value) in enumerate(paths)]
    touches = [(f"J{i}", f"J{i}-{k}", k, channel.strip()) for i, (path, _, _) in enumerate(paths)
               for k, channel in enumerate(path.split(">"))]
    return frames(journeys, touches)


def _by_channel(result, column: str) -> dict[str, float]:
    return dict(zip(result.channels["channel"], result.channels[column], strict=True))


def test_the_docstring_example_worked_by_hand():
    # A > B won, A lost, B won. start→A 2/3, start→B 1/3, A→B 1/2, A→null 1/2, B→conversion 1.
    # P(conversion) = 2/3·1/2 + 1/3 = 2/3. Without A: 1/3 (effect 1/2). Without B: 0 (effect 1).
    result = markov_removal(*_paths(("A > B", True, 100.0), ("A", False, 0.0), ("B", True, 200.0)))
    assert result.conversion_probability == pytest.approx(2 / 3)
    assert _by_channel(result, "removal_effect") == pytest.approx({"A": 0.5, "B": 1.0})
    assert _by_channel(result, "conversions") == pytest.approx({"A": 2 / 3, "B": 4 / 3})
    # Every conversion ends in B, so the value removal effects equal the conversion ones: $300 × 1/3, × 2/3.
    assert _by_channel(result, "value") == pytest.approx({"A": 100.0, "B": 200.0})


def test_values_follow_the_state_each_conversion_ends_in():
    # A > B won $100, A lost, A won $400. From A: to B, conversion and null, 1/3 each.
    # P = 2/3; without A 0 (effect 1); without B 1/3 (effect 1/2).
    # Expected value: conversions ending in A are worth $400, in B $100: 400/3 + 100/3 = 500/3.
    # Without B: 400/3, so B's value removal effect is 1 − 400/500 = 0.2.
    result = markov_removal(*_paths(("A > B", True, 100.0), ("A", False, 0.0), ("A", True, 400.0)))
    assert _by_channel(result, "removal_effect") == pytest.approx({"A": 1.0, "B": 0.5})
    assert _by_channel(result, "value_removal_effect") == pytest.approx({"A": 1.0, "B": 0.2})
    assert _by_channel(result, "conversions") == pytest.approx({"A": 4 / 3, "B": 2 / 3})
    assert _by_channel(result, "value") == pytest.approx({"A": 500 / 1.2, "B": 100 / 1.2})
    transitions = {(r["from_state"], r["to_state"]): r["probability"] for r in result.transitions.iter_rows(named=True)}
    assert transitions == pytest.approx({("(start)", "A"): 1.0, ("A", "B"): 1 / 3, ("A", "(conversion)"): 1 / 3,
                                         ("A", "(null)"): 1 / 3, ("B", "(conversion)"): 1.0})
    # The per-touch table: J0's $100 split 1 : 0.5 between its A and B touches.
    got = shares(result.attribution)
    assert got == pytest.approx({"J0-0": 2 / 3, "J0-1": 1 / 3, "J2-0": 1.0})
    assert result.attribution["credited_value"].sum() == pytest.approx(500.0)


def test_order_two_remembers_where_a_path_came_from():
    paths = (("A > B", True, 1.0), ("B > A", False, 0.0), ("A", True, 1.0))
    # Order 1: x_A = x_B/3 + 1/3 and x_B = 1/2 + x_A/2 give x_A = 3/5, x_B = 4/5, P = 2/3·3/5 + 1/3·4/5 = 2/3.
    # Without B: x_A = 1/3, P = 2/9, effect 1 − (2/9)/(2/3) = 2/3.
    # Without A: only start → B → conversion is left, P = 1/3 · 1/2 = 1/6, effect 1 − (1/6)/(2/3) = 3/4.
    first = markov_removal(*_paths(*paths), order=1)
    assert first.conversion_probability == pytest.approx(2 / 3)
    assert _by_channel(first, "removal_effect") == pytest.approx({"A": 0.75, "B": 2 / 3})
    # Order 2: states "A > B", "B > A" and "A" (too short for a pair), each a third of starts.
    # Every state holds A: without A nothing converts (effect 1). Without B only the path "A"
    # converts: P = 1/3, effect 1/2.
    second = markov_removal(*_paths(*paths), order=2)
    assert second.conversion_probability == pytest.approx(2 / 3)
    assert _by_channel(second, "removal_effect") == pytest.approx({"A": 1.0, "B": 0.5})
    assert set(second.transitions["from_state"]) == {"(start)", "A > B", "B > A", "A"}


def test_a_channel_repeated_back_to_back_is_one_visit():
    once = markov_removal(*_paths(("A > B", True, 10.0), ("A", False, 0.0), ("B > C", True, 5.0)))
    again = markov_removal(*_paths(("A > A > B", True, 10.0), ("A > A", False, 0.0), ("B > C > C", True, 5.0)))
    assert once.channels.equals(again.channels)
    assert once.conversion_probability == pytest.approx(again.conversion_probability)


def test_journeys_without_touches_are_left_out_and_an_empty_input_is_refused():
    touches, journeys = _paths(("A > B", True, 100.0), ("A", False, 0.0), ("B", True, 200.0))
    more = pl.concat([journeys, journeys.head(1).with_columns(pl.lit("J9").alias("journey_id"))])
    with_idle = markov_removal(touches, more)
    assert with_idle.channels["conversions"].sum() == pytest.approx(2.0)
    assert with_idle.conversion_probability == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no won journey has a touch"):
        markov_removal(touches.filter(pl.col("journey_id") == "J1"), journeys)
    with pytest.raises(ValueError, match="order must be a positive integer"):
        markov_removal(touches, journeys, order=0)


def _random_journeys(n: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Journeys of 1–5 touches over five channels; each channel raises the chance of a win."""
    rng = np.random.default_rng(seed)
    channels = np.array(["call", "email", "event", "training", "webinar"])
    lift = np.array([0.08, 0.05, 0.10, 0.20, 0.03])
    lengths = rng.integers(1, 6, n)
    journey = np.repeat(np.arange(n), lengths)
    code = rng.choice(5, size=journey.size, p=[0.25, 0.30, 0.15, 0.10, 0.20])
    touched = np.zeros((n, 5), dtype=bool)
    touched[journey, code] = True
    won = rng.random(n) < 1 - np.prod(np.where(touched, 1 - lift, 1.0), axis=1)
    position = np.arange(journey.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    touches, journeys = frames(
        [(f"J{i}", bool(w), float(v) if w else 0.0, 30) for i, (w, v) in enumerate(
            zip(won, rng.uniform(5_000, 15_000, n), strict=True))],
        [(f"J{j}", f"T{k}", int(p), channels[c]) for k, (j, p, c) in enumerate(
            zip(journey, position, code, strict=True))],
    )
    return touches, journeys


@pytest.mark.parametrize("order", [1, 2, 3])
def test_agrees_with_channelattribution_within_one_percent(order):
    ca = pytest.importorskip("ChannelAttribution", reason="pip install channelattribution matplotlib (dev only)")
    touches, journeys = _random_journeys(3000, seed=11)
    ours = markov_removal(touches, journeys, order=order)
    paths = (touches.sort("journey_id", "touch_at").group_by("journey_id", maintain_order=True)
             .agg(pl.col("channel").str.join(" > ").alias("path"))
             .join(journeys, on="journey_id")
             .group_by("path").agg(pl.col("converted").sum().alias("conversions"),
                                   (~pl.col("converted")).sum().alias("nulls"), pl.col("value").sum()))
    # One run of 2 million simulated paths, long enough never to be cut short.
    theirs = ca.markov_model(paths.to_pandas(), "path", "conversions", var_value="value", var_null="nulls",
                             order=order, sep=">", nsim_start=2_000_000, max_step=1000, out_more=True, seed=3,
                             nfold=1, verbose=False, flg_pro=False)
    credit = pl.from_pandas(theirs["result"]).rename({"channel_name": "channel"})
    effects = pl.from_pandas(theirs["removal_effects"]).rename({"channel_name": "channel"})
    both = ours.channels.join(credit, on="channel").join(effects, on="channel")
    assert both.height == 5
    assert ours.channels["conversions"].sum() == pytest.approx(credit["total_conversions"].sum(), rel=0.01)
    assert ours.channels["conversions"].sum() == pytest.approx(float(journeys["converted"].sum()))
    for row in both.iter_rows(named=True):
        assert row["conversions"] == pytest.approx(row["total_conversions"], rel=0.01), row["channel"]
        assert row["value"] == pytest.approx(row["total_conversion_value"], rel=0.01), row["channel"]
        assert row["removal_effect"] == pytest.approx(row["removal_effects_conversion"], abs=0.01), row["channel"]


def test_a_chain_fitted_on_channels_alone_splits_the_won_touches_as_the_full_fit_does():
    # A study fits the chain on every journey's channels alone and splits only the won journeys'
    # full rows: the table must be the one the fit on every column gives. Per touch, a journey's
    # shares are its channels' removal effects (A 1/2, B 1) over their sum: A > B won $100 gives
    # A $33.33 and B $66.67; B won $200 gives B all of it.
    from training_roi.attribute.markov import markov_fit, markov_split
    from training_roi.attribute.rules import TOUCH_COLUMNS, ordered_touches

    touches, journeys = _paths(("A > B", True, 100.0), ("A", False, 0.0), ("B", True, 200.0))
    touches = touches.with_columns(pl.lit("note").alias("extra"))
    full = markov_fit(ordered_touches(touches, journeys, converted_only=False))
    narrow = markov_fit(ordered_touches(touches.select(TOUCH_COLUMNS), journeys, converted_only=False),
                        per_touch=False)
    assert narrow.attribution is None
    table = markov_split(ordered_touches(touches, journeys, converted_only=True), narrow)
    assert full.attribution is not None
    assert table.equals(full.attribution)
    assert table["credited_value"].to_list() == pytest.approx([100 / 3, 200 / 3, 200.0])
    assert "extra" in table.columns
    lone = markov_fit(ordered_touches(touches.filter(pl.col("channel") == "A"), journeys, converted_only=False),
                      per_touch=False)
    with pytest.raises(ValueError, match="not fitted on: B"):
        markov_split(ordered_touches(touches, journeys, converted_only=True), lone)
