"""Per-rater figures: median time per judgement, tie and both-bad shares, majority agreement."""

from __future__ import annotations

from app.raters.activity import majority, rater_figures
from app.raters.queries import Judged


def judged(
    rater: str, n: int, verdict: str = "a", gap: float | None = None, tie: bool = False
) -> Judged:
    """The rater's judgement of item n."""
    item = (n, (("a", 2 * n), ("b", 2 * n + 1)))
    return Judged(rater, item, verdict, tie, verdict == "both_bad", gap)


def test_median_time_leaves_out_breaks_and_first_judgements() -> None:
    # Gaps 30, 50, 20, 900 (a break, over 600 s) and -5 (clock skew), first one None:
    # kept 30, 50, 20 -> median 30; 3 timed judgements.
    gaps = [None, 30.0, 50.0, 20.0, 900.0, -5.0]
    [row] = rater_figures([judged("ann", n, gap=g) for n, g in enumerate(gaps)])
    assert (row.judgements, row.median_seconds, row.timed_judgements) == (6, 30.0, 3)
    # An even count: the mean of the two middle gaps, (20 + 30) / 2 = 25.
    [row] = rater_figures([judged("ann", n, gap=g) for n, g in enumerate([10, 20, 30, 600])])
    assert row.median_seconds == 25.0
    [row] = rater_figures([judged("ann", 0), judged("ann", 1, gap=601.0)])
    assert (row.median_seconds, row.timed_judgements) == (None, 0)


def test_tie_and_both_bad_shares_are_of_all_judgements() -> None:
    rows = [
        judged("ann", 0, "tie", tie=True),
        judged("ann", 1, "b+c", tie=True),
        judged("ann", 2, "both_bad"),
        judged("ann", 3, "a"),
    ]
    [row] = rater_figures(rows)
    assert (row.tie_share, row.both_bad_share) == (0.5, 0.25)


def test_majority_of_the_other_raters() -> None:
    assert majority(["a", "a", "b"]) == "a"
    assert majority(["a", "b"]) is None
    assert majority(["a", "a", "b", "b", "tie"]) is None
    assert majority(["tie", "a", "b", "tie"]) == "tie"


def test_agreement_with_the_majority_counts_items_with_two_other_raters() -> None:
    verdicts = {
        # item: verdicts of ann, bob, cy, dee (None: did not judge)
        0: ("a", "a", "a", None),  # ann: others a, a -> agrees; bob, cy: agree
        1: ("b", "a", "a", "a"),  # ann: others a (3) -> disagrees; bob: others b, a, a -> a, agrees
        2: ("a", "b", "tie", None),  # ann: others b, tie -> no majority, left out
        3: ("a", "a", None, None),  # only one other rater: left out
    }
    rows = [
        judged(rater, n, v)
        for n, row in verdicts.items()
        for rater, v in zip(("ann", "bob", "cy", "dee"), row, strict=True)
        if v is not None
    ]
    figures = {f.rater: f for f in rater_figures(rows)}
    # ann: items 0 (agree) and 1 (disagree) -> 1/2.
    assert (figures["ann"].majority_agreement, figures["ann"].majority_items) == (0.5, 2)
    # bob: item 0 agree; item 1 others b, a, a -> a, agree; item 2 others a, tie -> none -> 2/2.
    assert (figures["bob"].majority_agreement, figures["bob"].majority_items) == (1.0, 2)
    # cy: item 0 others a, a -> agree; item 1 others b, a, a -> a, agree; item 2 others a, b ->
    # none -> 2/2.
    assert (figures["cy"].majority_agreement, figures["cy"].majority_items) == (1.0, 2)
    # dee: item 1 others b, a, a -> a -> agrees.
    assert (figures["dee"].majority_agreement, figures["dee"].majority_items) == (1.0, 1)
    # Most judgements first, then by name.
    assert [f.rater for f in rater_figures(rows)] == ["ann", "bob", "cy", "dee"]


def test_no_item_with_two_other_raters_is_none_not_zero() -> None:
    [ann, bob] = rater_figures([judged("ann", 0), judged("bob", 0)])
    assert (ann.majority_agreement, ann.majority_items) == (None, 0)
    assert (bob.majority_agreement, bob.majority_items) == (None, 0)
