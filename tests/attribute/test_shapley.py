"""Shapley values: a game solved by hand, and the axioms (efficiency, symmetry, null player)."""

from __future__ import annotations

from itertools import permutations
from math import factorial

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.attribute.journey_frames import frames
from training_roi.attribute import shapley_channels, shapley_touches


def _sets(*journeys: tuple[str, bool, float]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Journeys from ("A B A", won, value): touches in that order, a day apart, closing on day 30."""
    rows = [(f"J{i}", won, value, 30) for i, (_, won, value) in enumerate(journeys)]
    touches = [(f"J{i}", f"J{i}-{k}", k, channel) for i, (path, _, _) in enumerate(journeys)
               for k, channel in enumerate(path.split())]
    return frames(rows, touches)


def _credit(table: pl.DataFrame, column: str = "conversions") -> dict[str, float]:
    return dict(zip(table["channel"], table[column], strict=True))


def _by_permutations(won: list[tuple[frozenset[str], float]], players: list[str]) -> dict[str, float]:
    """Shapley values from the definition: marginal worth averaged over every joining order."""
    def worth(coalition: set[str]) -> float:
        return sum(value for channels, value in won if channels <= coalition)

    credit = dict.fromkeys(players, 0.0)
    for order in permutations(players):
        joined: set[str] = set()
        for player in order:
            before = worth(joined)
            joined.add(player)
            credit[player] += worth(joined) - before
    return {p: c / factorial(len(players)) for p, c in credit.items()}


def test_a_game_worked_by_hand():
    # Won journeys touching {A} and {A, B}: v(A) = 1, v(B) = 0, v(AB) = 2.
    # A: (v(A) − 0 + v(AB) − v(B)) / 2 = 1.5; B: (v(AB) − v(A) + v(B) − 0) / 2 = 0.5.
    touches, journeys = _sets(("A", True, 100.0), ("A B B", True, 300.0), ("B", False, 0.0))
    table = shapley_channels(touches, journeys)
    assert _credit(table) == pytest.approx({"A": 1.5, "B": 0.5})
    # Revenue: v(A) = 100, v(AB) = 400: A gets (100 + 400) / 2 = 250, B (300 + 0) / 2 = 150.
    assert _credit(table, "value") == pytest.approx({"A": 250.0, "B": 150.0})
    # Per touch: the $300 journey gives A one half, and each of the two B touches a quarter.
    rows = shapley_touches(touches, journeys)
    assert dict(zip(rows["touch_id"], rows["share"], strict=True)) == pytest.approx(
        {"J0-0": 1.0, "J1-0": 0.5, "J1-1": 0.25, "J1-2": 0.25})


def test_more_than_fifteen_channels_is_refused_with_the_count_and_the_remedy():
    many = " ".join(f"c{i}" for i in range(16))
    touches, journeys = _sets((many, True, 1.0))
    with pytest.raises(ValueError, match=r"touch 16; group channels"):
        shapley_channels(touches, journeys)
    # Channels seen only in lost journeys are null players and do not count towards the limit.
    touches, journeys = _sets(("c0 c1", True, 1.0), (many, False, 0.0))
    table = shapley_channels(touches, journeys)
    assert table.height == 16 and _credit(table)["c5"] == 0.0 and _credit(table)["c0"] == pytest.approx(0.5)


channel_sets = st.lists(
    st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=6), st.booleans(), st.floats(1, 1000)),
    min_size=1, max_size=12)


def _spec_frames(spec, extra=()) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _sets(*[(" ".join(path), won, value if won else 0.0) for path, won, value in [*spec, *extra]])


@settings(max_examples=60, deadline=None)
@given(channel_sets)
def test_equals_the_definition_and_is_efficient(spec):
    touches, journeys = _spec_frames(spec)
    table = shapley_channels(touches, journeys)
    won = [(frozenset(path), value) for path, w, value in spec if w]
    players = sorted(set(table["channel"]))
    assert _credit(table) == pytest.approx(_by_permutations([(s, 1.0) for s, _ in won], players))
    assert _credit(table, "value") == pytest.approx(_by_permutations(won, players))
    # Efficiency: the credit adds up to the won journeys and their revenue.
    assert table["conversions"].sum() == pytest.approx(len(won))
    assert table["value"].sum() == pytest.approx(sum(v for _, v in won))
    # The per-touch table sums, channel by channel, to the same values.
    per = shapley_touches(touches, journeys).group_by("channel").agg(pl.col("share", "credited_value").sum())
    for row in per.iter_rows(named=True):
        assert row["share"] == pytest.approx(_credit(table)[row["channel"]])
        assert row["credited_value"] == pytest.approx(_credit(table, "value")[row["channel"]])


@settings(max_examples=60, deadline=None)
@given(channel_sets)
def test_symmetric_channels_get_equal_credit(spec):
    # Mirror every journey with A and B swapped: the game no longer tells A from B.
    swap = str.maketrans("AB", "BA")
    mirrored = [([c.translate(swap) for c in path], won, value) for path, won, value in spec]
    touches, journeys = _spec_frames(spec, mirrored)
    credit = shapley_channels(touches, journeys)
    conversions, value = _credit(credit), _credit(credit, "value")
    if "A" in conversions:
        assert conversions["A"] == pytest.approx(conversions["B"])
        assert value["A"] == pytest.approx(value["B"])


@settings(max_examples=60, deadline=None)
@given(channel_sets)
def test_a_channel_that_never_helped_a_win_gets_nothing(spec):
    # Z only ever touches lost journeys: v(S ∪ {Z}) = v(S) for every coalition S.
    touches, journeys = _spec_frames(spec, [(["Z", "A"], False, 0.0), (["Z"], False, 0.0)])
    credit = shapley_channels(touches, journeys)
    assert _credit(credit)["Z"] == 0.0 and _credit(credit, "value")["Z"] == 0.0
    assert credit["conversions"].sum() == pytest.approx(sum(1 for _, won, _ in spec if won))
