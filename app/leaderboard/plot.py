"""Geometry for the server-drawn SVG: ratings with interval whiskers, and the win-rate heat map.

Only numbers and names leave here; the template escapes the names and draws with SVG
presentation attributes (the page CSP forbids inline style attributes, not these).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.leaderboard.schemas import LeaderboardOut

LABEL_WIDTH, ROW_HEIGHT, PLOT_WIDTH, TOP, BOTTOM = 220, 28, 480, 16, 36
CELL, LABEL_CHARS, CHAR_WIDTH = 56, 24, 7


@dataclass(frozen=True)
class Tick:
    """An axis tick: where it is drawn and its label."""

    x: float
    label: str


@dataclass(frozen=True)
class Whisker:
    """One model's row in the ratings plot."""

    name: str
    y: float
    x: float
    x_low: float
    x_high: float
    rating: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Cell:
    """One heat-map cell: position, fill, and the percentage printed in it."""

    x: float
    y: float
    fill: str
    ink: str
    label: str
    title: str


@dataclass(frozen=True)
class Plot:
    """Everything the template needs to draw both figures."""

    width: int
    height: int
    axis_y: float
    ticks: list[Tick]
    whiskers: list[Whisker]
    matrix_size: int
    matrix_width: int
    matrix_label: int
    names: list[str]
    cells: list[Cell]


def _ticks(low: float, high: float) -> list[float]:
    """About five round tick values between low and high."""
    raw = (high - low) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if step * m >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) // step) + 1)]


def _fill(rate: float) -> tuple[str, str]:
    """Blue for winning, red for losing, white at 50%; dark or light ink to stay readable."""
    strength = abs(rate - 0.5) * 2
    shade = round(255 - 175 * strength)
    fill = f"#{shade:02x}{shade:02x}ff" if rate >= 0.5 else f"#ff{shade:02x}{shade:02x}"
    return fill, "#ffffff" if strength > 0.6 else "#111111"


def plot(board: LeaderboardOut) -> Plot:
    """Lay out the ratings plot and the heat map for a non-empty board."""
    models = board.models
    low = min(m.ci_low for m in models)
    high = max(m.ci_high for m in models)
    pad = max((high - low) * 0.08, 10.0)
    low, high = low - pad, high + pad

    def at(value: float) -> float:
        return round(LABEL_WIDTH + (value - low) / (high - low) * PLOT_WIDTH, 1)

    whiskers = [
        Whisker(
            name=m.name,
            y=TOP + i * ROW_HEIGHT + ROW_HEIGHT / 2,
            x=at(m.rating),
            x_low=at(m.ci_low),
            x_high=at(m.ci_high),
            rating=m.rating,
            ci_low=m.ci_low,
            ci_high=m.ci_high,
        )
        for i, m in enumerate(models)
    ]
    axis_y = TOP + len(models) * ROW_HEIGHT
    # Room for the longest (truncated) name beside and above the matrix.
    margin = 16 + CHAR_WIDTH * min(LABEL_CHARS, max(len(m.name) for m in models))
    cells = []
    for i, row in enumerate(board.win_rates):
        for j, rate in enumerate(row):
            if rate is None:
                continue
            fill, ink = _fill(rate)
            cells.append(
                Cell(
                    x=margin + j * CELL,
                    y=margin + i * CELL,
                    fill=fill,
                    ink=ink,
                    label=f"{rate:.0%}",
                    title=f"{models[i].name} beat {models[j].name} in {rate:.1%} of "
                    f"{board.pair_counts[i][j]} pairs",
                )
            )
    return Plot(
        width=LABEL_WIDTH + PLOT_WIDTH + 20,
        height=axis_y + BOTTOM,
        axis_y=axis_y,
        ticks=[Tick(at(t), f"{t:g}") for t in _ticks(low, high)],
        whiskers=whiskers,
        matrix_size=margin + CELL * len(models) + 4,
        # The last column's slanted name reaches past the matrix to the right.
        matrix_width=margin + CELL * len(models) + 4 + margin // 2,
        matrix_label=margin,
        names=[m.name for m in models],
        cells=cells,
    )
