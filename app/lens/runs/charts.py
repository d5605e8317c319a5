"""Bar charts drawn server-side as SVG: this module computes the geometry, a template draws it
(every label escaped by Jinja). Each bar carries its value as text, so no colour is needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 480
HEIGHT = 160
TOP = 18  # room for the value above the tallest bar
BOTTOM = 20  # room for the labels under the bars
GAP = 4


@dataclass(frozen=True)
class Bar:
    """One bar: its box, its label under it and its value written above it."""

    x: float
    y: float
    width: float
    height: float
    label: str
    value: str

    @property
    def middle(self) -> float:
        """The x of the bar's centre (for its texts)."""
        return self.x + self.width / 2


@dataclass(frozen=True)
class Chart:
    """A bar chart's size and bars."""

    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]


def bar_chart(values: Sequence[float | None], labels: Sequence[str], shown: Sequence[str]) -> Chart:
    """Bars for `values` (None draws no bar), scaled to the largest; `shown` is written above
    each bar, `labels` under it."""
    count = max(len(values), 1)
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    plot = HEIGHT - TOP - BOTTOM
    step = WIDTH / count
    bars = []
    for index, (value, label, text) in enumerate(zip(values, labels, shown, strict=True)):
        height = 0.0 if value is None else plot * value / top
        bars.append(
            Bar(
                x=round(index * step + GAP / 2, 2),
                y=round(TOP + plot - height, 2),
                width=round(step - GAP, 2),
                height=round(height, 2),
                label=label,
                value=text,
            )
        )
    return Chart(WIDTH, HEIGHT, TOP + plot, tuple(bars))
