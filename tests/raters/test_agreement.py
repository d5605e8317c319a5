"""Agreement figures against values computed by hand (and one published worked example)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from app.raters.agreement import cohen_pairs, fleiss, krippendorff_alpha
from app.raters.queries import Item
from app.raters.verdicts import has_tie, verdict


def item(n: int) -> Item:
    """The n-th item (a turn with two answers)."""
    return (n, (("a", 2 * n), ("b", 2 * n + 1)))


def by_rater(rows: Sequence[Sequence[str | None]]) -> dict[Item, dict[str, str]]:
    """Rows of verdicts, one column per rater (r0, r1, ...); None where a rater did not judge."""
    return {
        item(n): {f"r{i}": v for i, v in enumerate(row) if v is not None}
        for n, row in enumerate(rows)
    }


def test_cohen_kappa_matches_the_hand_computation() -> None:
    # Two raters, 10 items, confusion table (rows r0, columns r1):
    #          r1=a  r1=b
    #   r0=a     4     1     r0: a 5, b 5
    #   r0=b     2     3     r1: a 6, b 4
    # po = (4 + 3) / 10 = 0.7
    # pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5
    # kappa = (po - pe) / (1 - pe) = 0.2 / 0.5 = 0.4
    rows = [("a", "a")] * 4 + [("a", "b")] + [("b", "a")] * 2 + [("b", "b")] * 3
    [pair] = cohen_pairs(by_rater(rows))
    assert (pair.rater_a, pair.rater_b) == ("r0", "r1")
    assert pair.kappa.value == pytest.approx(0.4)
    assert pair.kappa.items == 10 and pair.kappa.note is None


def test_cohen_kappa_only_counts_shared_items_for_each_pair() -> None:
    # r2 judged only items 0 and 1, with r0: both a then b -> perfect agreement, kappa 1
    # (po = 1, pe = 0.5 * 0.5 + 0.5 * 0.5 = 0.5). r1 and r2 share the same two items:
    # r1 said a, a; r2 a, b -> po = 0.5, pe = 1 * 0.5 + 0 * 0.5 = 0.5, kappa 0.
    rows = [("a", "a", "a"), ("b", "a", "b"), ("a", "b", None), ("b", "b", None)]
    pairs = {(p.rater_a, p.rater_b): p.kappa for p in cohen_pairs(by_rater(rows))}
    assert pairs["r0", "r2"].value == 1.0 and pairs["r0", "r2"].items == 2
    assert pairs["r1", "r2"].value == 0.0 and pairs["r1", "r2"].items == 2
    # r0 and r1: po = 2/4, pe = 0.5 * 0.5 + 0.5 * 0.5 = 0.5 -> 0.
    assert pairs["r0", "r1"].value == 0.0 and pairs["r0", "r1"].items == 4


def test_kappa_is_not_enough_data_rather_than_nan() -> None:
    one_item = cohen_pairs(by_rater([("a", "b")]))[0].kappa
    assert (one_item.value, one_item.items) == (None, 1)
    assert one_item.note is not None and "fewer than 2 shared items" in one_item.note
    # Both raters said "tie" on every item: pe = 1, kappa = 0/0.
    same = cohen_pairs(by_rater([("tie", "tie")] * 5))[0].kappa
    assert (same.value, same.items) == (None, 5)
    assert same.note is not None and "same category" in same.note
    # Different single categories are defined: po = 0, pe = 1 * 0 + 0 * 1 = 0, kappa 0.
    assert cohen_pairs(by_rater([("a", "b")] * 3))[0].kappa.value == 0.0
    assert cohen_pairs({}) == []


# Four items, three raters each (a/b), the hand example for Fleiss and Krippendorff.
THREE_RATERS = [("a", "a", "a"), ("a", "a", "b"), ("b", "b", "b"), ("a", "b", "b")]


def test_fleiss_kappa_matches_the_hand_computation() -> None:
    # n = 3 raters per item; P_i = (sum_j n_ij^2 - n) / (n (n - 1)):
    #   aaa: (9 - 3)/6 = 1; aab: (4 + 1 - 3)/6 = 1/3; bbb: 1; abb: 1/3  -> P = (8/3)/4 = 2/3
    # p_a = (3 + 2 + 0 + 1)/12 = 1/2, p_b = 1/2 -> Pe = 1/4 + 1/4 = 1/2
    # kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
    figure = fleiss(by_rater(THREE_RATERS))
    assert figure.value == pytest.approx(1 / 3, abs=1e-4)
    assert (figure.items, figure.raters_per_item) == (4, 3)


def test_fleiss_kappa_reproduces_the_published_worked_example() -> None:
    # Fleiss (1971) style example from Wikipedia, "Fleiss' kappa", Worked example: 10 subjects,
    # 14 raters, 5 categories; P = 0.378, Pe = 0.213, kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    rows = [[str(c) for c, n in enumerate(counts) for _ in range(n)] for counts in table]
    figure = fleiss(by_rater(rows))
    assert figure.value is not None and round(figure.value, 3) == 0.210
    assert (figure.items, figure.raters_per_item) == (10, 14)


def test_fleiss_uses_the_largest_group_of_items_with_one_rater_count() -> None:
    # The four 3-rater items plus one 2-rater item: the 3-rater group (4 items) is used, so the
    # figure is the hand-computed 1/3 above.
    rows = [*THREE_RATERS, ("a", "b", None)]
    figure = fleiss(by_rater(rows))
    assert figure.value == pytest.approx(1 / 3, abs=1e-4)
    assert (figure.items, figure.raters_per_item) == (4, 3)
    # Only one item with 2 raters: not enough data.
    lonely = fleiss(by_rater([("a", "b")]))
    assert (lonely.value, lonely.items, lonely.raters_per_item) == (None, 1, 2)
    assert fleiss(by_rater([("a",), ("b",)])).note == (
        "not enough data: no item was judged by more than one rater"
    )
    # Everyone always said "a": Pe = 1, kappa 0/0.
    assert fleiss(by_rater([("a", "a")] * 4)).value is None


def test_krippendorff_alpha_matches_the_hand_computation() -> None:
    # Coincidences o_ck = sum over items of (ordered c-k pairs of different raters)/(m_u - 1):
    #   aaa: o_aa += 6/2 = 3; aab: o_aa += 2/2, o_ab += 2/2, o_ba += 2/2; bbb: o_bb += 3;
    #   abb: o_bb += 1, o_ab += 1, o_ba += 1  -> o_aa = 4, o_bb = 4, o_ab = o_ba = 2
    # n = 12, n_a = n_b = 6; nominal alpha = 1 - (n - 1) * (o_ab + o_ba) / (n_a n_b + n_b n_a)
    #   = 1 - 11 * 4 / 72 = 7/18 = 0.3889
    figure = krippendorff_alpha(by_rater(THREE_RATERS))
    assert figure.value == pytest.approx(7 / 18, abs=1e-4)
    assert figure.items == 4


def test_krippendorff_alpha_reproduces_the_published_example_with_missing_data() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
    # 12 units, values missing; nominal alpha = 0.743. Unit 12 has one value and is not
    # pairable, so 11 items count.
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    rows = [[None if v is None else str(v) for v in unit] for unit in zip(*observers, strict=True)]
    figure = krippendorff_alpha(by_rater(rows))
    assert figure.value is not None and round(figure.value, 3) == 0.743
    assert figure.items == 11


def test_krippendorff_alpha_is_not_enough_data_rather_than_nan() -> None:
    assert krippendorff_alpha(by_rater([("a", "b")])).value is None
    same = krippendorff_alpha(by_rater([("tie", "tie", "tie")] * 3))
    assert (same.value, same.items) == (None, 3)
    assert same.note is not None and "alpha is undefined" in same.note


def test_verdicts_of_two_and_n_answers() -> None:
    assert verdict({"a": 1, "b": 2}, False) == "a"
    assert verdict({"a": 2, "b": 1}, False) == "b"
    assert verdict({"a": 1, "b": 1}, False) == "tie"
    assert verdict({"a": None, "b": None}, True) == "both_bad"
    assert verdict({"a": 2, "b": 1, "c": 1}, False) == "b+c"
    assert verdict({"a": 1, "b": 1, "c": 1}, False) == "tie"
    assert verdict({"a": 3, "b": 2, "c": 1}, False) == "c"
    assert has_tie({"a": 1, "b": 2, "c": 2}, False)
    assert not has_tie({"a": 1, "b": 2, "c": 3}, False)
    assert not has_tie({"a": None, "b": None}, True)
