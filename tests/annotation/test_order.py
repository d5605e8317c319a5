"""Per-rater answer order: stable for a rater and item, different across raters, or fixed."""

from __future__ import annotations

from app.annotation.assign import display_order
from app.annotation.models import RatingTask


def test_order_is_stable_per_rater_and_varies_across_raters() -> None:
    task = RatingTask(id=1, random_positions=True)
    slots = ["a", "b", "c"]
    assert display_order(task, 5, "alice", slots) == display_order(task, 5, "alice", slots)
    orders = {tuple(display_order(task, 5, f"r{i}", slots)) for i in range(60)}
    assert len(orders) == 6  # every order of three answers turns up
    assert all(sorted(order) == slots for order in orders)


def test_fixed_order_when_random_positions_are_off() -> None:
    task = RatingTask(id=1, random_positions=False)
    assert display_order(task, 5, "alice", ["a", "b"]) == ["a", "b"]
