"""Rule-based models on hand-worked journeys; shares sum to one on random ones."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.attribute.journey_frames import frames, shares
from training_roi.attribute import first_touch, last_touch, linear, position_based, time_decay

# J1, won $1,000 on day 30: touches 28, 14, 7 and 0 days before the close, one the day after.
# J2, won $500, one touch. J5, won $300, two touches at the same moment (ids decide the order).
# J3 lost, J4 won without touches: neither gives a row.
JOURNEYS = [("J1", True, 1000, 30), ("J2", True, 500, 10), ("J3", False, 0, 30), ("J4", True, 200, 30),
            ("J5", True, 300, 20)]
TOUCHES = [
    ("J1", "t1", 2, "campaign: Webinar"), ("J1", "t3", 23, "task: Call"), ("J1", "t2", 16, "training: Sales"),
    ("J1", "t4", 30, "task: Call"), ("J1", "t5", 31, "task: Call"),
    ("J2", "u1", 3, "training: Sales"),
    ("J3", "v1", 1, "campaign: Webinar"), ("J3", "v2", 2, "training: Sales"),
    ("J5", "wb", 5, "task: Call"), ("J5", "wa", 5, "campaign: Email"),
]


@pytest.fixture
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    course = ["c-" + r[1] for r in TOUCHES]
    return frames(JOURNEYS, TOUCHES, course_id=course)


def test_first_touch_credits_the_first_touch_before_the_close_and_breaks_ties_by_id(data):
    table = first_touch(*data)
    assert shares(table) == {"t1": 1, "t2": 0, "t3": 0, "t4": 0, "u1": 1, "wa": 1, "wb": 0}


def test_last_touch_counts_a_touch_on_the_close_itself_but_not_after(data):
    assert shares(last_touch(*data)) == {"t1": 0, "t2": 0, "t3": 0, "t4": 1, "u1": 1, "wa": 0, "wb": 1}


def test_linear_splits_equally_and_credits_value(data):
    table = linear(*data)
    assert shares(table) == pytest.approx({"t1": .25, "t2": .25, "t3": .25, "t4": .25, "u1": 1, "wa": .5, "wb": .5})
    credited = dict(zip(table["touch_id"], table["credited_value"], strict=True))
    assert credited["t2"] == pytest.approx(250.0) and credited["wa"] == pytest.approx(150.0)


def test_time_decay_halves_credit_every_half_life(data):
    # Ages 28, 14, 7, 0 days with a 7-day half-life: weights 1/16, 1/4, 1/2, 1; their sum is 29/16.
    table = time_decay(*data, half_life_days=7.0)
    got = shares(table)
    assert [got[t] for t in ("t1", "t2", "t3", "t4")] == pytest.approx([1 / 29, 4 / 29, 8 / 29, 16 / 29])
    assert got["wa"] == pytest.approx(0.5) and got["u1"] == 1.0
    # A 14-day half-life: weights 1/4, 1/2, 1/√2, 1.
    w = [0.25, 0.5, 2 ** -0.5, 1.0]
    got = shares(time_decay(*data, half_life_days=14.0))
    assert [got[t] for t in ("t1", "t2", "t3", "t4")] == pytest.approx([x / sum(w) for x in w])


def test_position_based_gives_the_ends_their_weights_and_shares_the_rest(data):
    got = shares(position_based(*data))
    assert [got[t] for t in ("t1", "t2", "t3", "t4")] == pytest.approx([0.4, 0.1, 0.1, 0.4])
    assert got["u1"] == 1.0 and got["wa"] == pytest.approx(0.5) and got["wb"] == pytest.approx(0.5)
    got = shares(position_based(*data, first=0.3, last=0.5))
    assert [got[t] for t in ("t1", "t2", "t3", "t4")] == pytest.approx([0.3, 0.1, 0.1, 0.5])
    # Two touches: 0.3 and 0.5 renormalised to 3/8 and 5/8.
    assert got["wa"] == pytest.approx(3 / 8) and got["wb"] == pytest.approx(5 / 8)


def test_the_table_keeps_the_touch_columns_and_adds_model_share_value(data):
    table = linear(*data)
    assert table.columns == ["journey_id", "touch_id", "touch_at", "channel", "course_id", "model", "share",
                             "credited_value"]
    assert set(table["model"]) == {"linear"}
    assert dict(zip(table["touch_id"], table["course_id"], strict=True))["t3"] == "c-t3"
    assert set(table["journey_id"]) == {"J1", "J2", "J5"}


def test_inputs_are_checked_with_messages_in_the_users_terms(data):
    touches, journeys = data
    with pytest.raises(ValueError, match="touches lacks the column"):
        linear(touches.drop("channel"), journeys)
    with pytest.raises(ValueError, match=r"journeys\.value must be Float64"):
        linear(touches, journeys.with_columns(pl.col("value").cast(pl.Int64)))
    with pytest.raises(ValueError, match="'t1' appears more than once"):
        linear(touches.with_columns(pl.when(pl.col("touch_id") == "t2").then(pl.lit("t1"))
                                    .otherwise(pl.col("touch_id")).alias("touch_id")), journeys)
    with pytest.raises(ValueError, match="one row per journey_id"):
        linear(touches, pl.concat([journeys, journeys.head(1)]))
    with pytest.raises(ValueError, match="half_life_days must be positive"):
        time_decay(touches, journeys, half_life_days=0)
    with pytest.raises(ValueError, match="sum to at most 1"):
        position_based(touches, journeys, first=0.6, last=0.6)
    with pytest.raises(ValueError, match="rename them"):
        linear(touches.with_columns(pl.lit(1.0).alias("share")), journeys)


journey_lists = st.lists(
    st.tuples(st.booleans(), st.floats(0, 10_000), st.lists(st.integers(0, 40), max_size=6)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(journey_lists)
def test_every_rule_gives_shares_summing_to_one_per_won_journey(spec):
    journeys = [(f"J{i}", won, value if won else 0.0, 30) for i, (won, value, _) in enumerate(spec)]
    touches = [(f"J{i}", f"J{i}-{k}", day, f"c{day % 3}") for i, (_, _, days) in enumerate(spec)
               for k, day in enumerate(days)]
    t, j = frames(journeys, touches)
    expected = {f"J{i}": value for i, (won, value, days) in enumerate(spec) if won and any(d <= 30 for d in days)}
    for model in (first_touch, last_touch, linear, time_decay, position_based):
        table = model(t, j)
        per = table.group_by("journey_id").agg(pl.col("share").sum(), pl.col("credited_value").sum())
        assert set(per["journey_id"]) == set(expected), model.__name__
        for row in per.iter_rows(named=True):
            assert row["share"] == pytest.approx(1.0)
            assert row["credited_value"] == pytest.approx(expected[row["journey_id"]], abs=1e-6)
        assert (table["share"] >= 0).all()


@settings(max_examples=60, deadline=None)
@given(journey_lists, st.randoms(use_true_random=False))
def test_journeys_numbered_in_row_order_give_the_tables_their_text_ids_give(spec, rng):
    """Numbered journeys take their facts by position, not by a join: the same table, in the same order."""
    journeys = [(f"J{i}", won, value if won else 0.0, 30) for i, (won, value, _) in enumerate(spec)]
    touches = [(f"J{i}", f"J{i}-{k:02d}", day, f"c{day % 3}") for i, (_, _, days) in enumerate(spec)
               for k, day in enumerate(days)]
    touches += [(f"J{len(spec) + 1}", "stray", 3, "c0")]  # a journey the journeys do not have
    rng.shuffle(touches)
    t, j = frames(journeys, touches)
    number = pl.col("journey_id").str.strip_prefix("J").cast(pl.Int64)
    tn, jn = t.with_columns(number), j.with_columns(number)
    for model in (first_touch, last_touch, linear, time_decay, position_based):
        by_text, by_number = model(t, j), model(tn, jn)
        assert by_number.drop("journey_id").equals(by_text.drop("journey_id")), model.__name__
        assert by_number["journey_id"].to_list() == [int(x[1:]) for x in by_text["journey_id"]]
