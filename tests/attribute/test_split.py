"""The learner split: one account's learners share the training credit once, never three times."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.attribute.journey_frames import frames, shares
from training_roi.attribute import first_touch, linear, split_among_learners, time_decay

# One won $3,000 deal of an account: a webinar, then L1 twice, L2 and L3 once (latest: L3, L1, L2).
# A second deal, $1,000, has one learner. Linear gives each of the five touches of J1 one fifth.
JOURNEYS = [("J1", True, 3000, 30), ("J2", True, 1000, 30)]
TOUCHES = [("J1", "w", 1, "campaign: Webinar"), ("J1", "a1", 2, "training: X"), ("J1", "b", 3, "training: X"),
           ("J1", "a2", 5, "training: X"), ("J1", "c", 9, "training: X"),
           ("J2", "d1", 4, "training: X"), ("J2", "d2", 8, "task: Call")]
LEARNERS = [None, "L1", "L2", "L1", "L3", "L4", None]
ROLES = [None, "manager", "rep", "manager", "rep", "rep", None]


@pytest.fixture
def table() -> pl.DataFrame:
    return linear(*frames(JOURNEYS, TOUCHES, learner_key=LEARNERS, role=ROLES))


def _per_learner(table: pl.DataFrame) -> dict[str, float]:
    per = table.filter(pl.col("journey_id") == "J1").group_by("learner_key").agg(pl.col("share").sum())
    return dict(zip(per["learner_key"], per["share"], strict=True))


def test_equal_split_credits_each_of_three_learners_once(table):
    split = split_among_learners(table, rule="equal")
    # Training holds 4/5 of J1; each learner gets a third of it, however many touches they had.
    per = _per_learner(split)
    assert per == pytest.approx({None: 0.2, "L1": 4 / 15, "L2": 4 / 15, "L3": 4 / 15})
    # L1's part is spread over L1's two touches as the model spread it (equally here).
    got = shares(split)
    assert got["a1"] == pytest.approx(2 / 15) and got["a2"] == pytest.approx(2 / 15)
    # The learners together hold the training share once: 4/5 of $3,000, not three times it.
    learners_value = split.filter(pl.col("learner_key").is_not_null() & (pl.col("journey_id") == "J1"))
    assert learners_value["credited_value"].sum() == pytest.approx(0.8 * 3000)


def test_recency_weighs_the_most_recent_learner_most(table):
    split = split_among_learners(table, rule="recency")
    # Latest touches: L3 day 9, L1 day 5, L2 day 3 → weights 1, 1/2, 1/4 → 4/7, 2/7, 1/7 of 4/5.
    assert _per_learner(split) == pytest.approx({None: 0.2, "L3": 16 / 35, "L1": 8 / 35, "L2": 4 / 35})


def test_role_weights_divide_the_training_share(table):
    split = split_among_learners(table, rule="role", role_weights={"manager": 2.0, "rep": 1.0})
    assert _per_learner(split) == pytest.approx({None: 0.2, "L1": 0.4, "L2": 0.2, "L3": 0.2})
    with pytest.raises(ValueError, match="no weight for the role"):
        split_among_learners(table, rule="role", role_weights={"manager": 2.0})
    with pytest.raises(ValueError, match="needs role_weights"):
        split_among_learners(table, rule="role")
    with pytest.raises(ValueError, match="positive numbers"):
        split_among_learners(table, rule="role", role_weights={"manager": 2.0, "rep": 0.0})


def test_a_single_learner_and_the_non_training_touches_are_left_as_they_were(table):
    for rule in ("equal", "recency"):
        split = split_among_learners(table, rule=rule)
        assert split.columns == table.columns and split["touch_id"].equals(table["touch_id"])
        assert split.filter(pl.col("journey_id") == "J2").equals(table.filter(pl.col("journey_id") == "J2"))
        assert split.filter(pl.col("touch_id") == "w").equals(table.filter(pl.col("touch_id") == "w"))


def test_within_a_learner_credit_follows_the_model_and_nothing_moves_when_training_got_nothing():
    touches, journeys = frames(JOURNEYS, TOUCHES, learner_key=LEARNERS)
    decayed = time_decay(touches, journeys, half_life_days=7.0)
    split = split_among_learners(decayed, rule="equal")
    before, after = shares(decayed), shares(split)
    assert after["a1"] / after["a2"] == pytest.approx(before["a1"] / before["a2"])
    # First touch gives J1 wholly to the webinar: the learners have nothing to split.
    first = first_touch(touches, journeys).filter(pl.col("journey_id") == "J1")
    assert split_among_learners(first, rule="equal").equals(first)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([None, "L1", "L2", "L3"]), st.integers(0, 29)),
                min_size=1, max_size=15),
       st.sampled_from(["equal", "recency", "role"]))
def test_splitting_never_changes_a_journeys_total(rows, rule):
    touches = [(f"J{j}", f"t{k}", day, "training: X" if who else "campaign: Y") for k, (j, who, day) in enumerate(rows)]
    journeys = [(f"J{j}", True, 100.0 * (j + 1), 30) for j in range(5)]
    roles = ["manager" if who == "L1" else "rep" for _, who, _ in rows]
    table = time_decay(*frames(journeys, touches, learner_key=[who for _, who, _ in rows], role=roles))
    split = split_among_learners(table, rule=rule, role_weights={"manager": 3.0, "rep": 1.0})
    totals = [t.group_by("journey_id").agg(pl.col("share", "credited_value").sum()).sort("journey_id")
              for t in (table, split)]
    assert totals[1]["share"].to_list() == pytest.approx(totals[0]["share"].to_list())
    assert totals[1]["credited_value"].to_list() == pytest.approx(totals[0]["credited_value"].to_list())
    assert (split["share"] >= 0).all()
    # No learner is credited more than the journey's whole training share.
    training = split.filter(pl.col("learner_key").is_not_null())
    per = training.group_by("journey_id", "learner_key").agg(pl.col("share").sum())
    whole = training.group_by("journey_id").agg(pl.col("share").sum().alias("all"))
    assert (per.join(whole, on="journey_id")
            .select((pl.col("share") <= pl.col("all") + 1e-12).all()).item())


def test_categorical_learners_and_roles_split_as_text(table):
    as_categories = table.with_columns(pl.col("learner_key", "role").cast(pl.Categorical))
    weights = {"manager": 2.0, "rep": 1.0}
    for rule in ("equal", "recency", "role"):
        split = split_among_learners(as_categories, rule=rule, role_weights=weights)
        plain = split_among_learners(table, rule=rule, role_weights=weights)
        assert split["share"].to_list() == pytest.approx(plain["share"].to_list())
