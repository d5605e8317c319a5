"""What the report page draws for one model: its charts and table rows, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

from app.lens.runs.charts import Chart, bar_chart
from app.lens.runs.report import BINS, DECILES, FIRST_POSITIONS, ModelReport, bin_label


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal, or a dash."""
    return "-" if value is None else f"{value * 100:.1f}%"


@dataclass(frozen=True)
class ModelView:
    """One model's report with its three charts."""

    report: ModelReport
    histogram: Chart
    deciles: Chart
    first: Chart

    @classmethod
    def of(cls, report: ModelReport) -> ModelView:
        """Charts for the ratio histogram, the deciles and the first positions."""
        hist_labels = [f"{i * 100 // BINS}%" for i in range(BINS)]
        histogram = bar_chart(
            [float(n) for n in report.histogram], hist_labels, [str(n) for n in report.histogram]
        )
        decile_shares = [cell.share for cell in report.deciles]
        deciles = bar_chart(
            decile_shares,
            [f"{(i + 1) * 10}%" for i in range(DECILES)],
            [percent(s) for s in decile_shares],
        )
        first_shares = [cell.share for cell in report.first]
        first = bar_chart(
            first_shares,
            [str(i + 1) for i in range(FIRST_POSITIONS)],
            [percent(s) for s in first_shares],
        )
        return cls(report, histogram, deciles, first)

    @property
    def bins(self) -> list[tuple[str, int]]:
        """The histogram as (range, answers) rows."""
        return [(bin_label(i), n) for i, n in enumerate(self.report.histogram)]
