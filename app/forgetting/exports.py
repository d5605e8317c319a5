"""The forgetting report as CSV: one line per model, then the tuned-minus-original line."""

from __future__ import annotations

import csv
import io

from app.forgetting.schemas import Report
from app.spreadsheet import neutralise

HEADER = [
    "row", "model", "slot", "role", "scored", "correct", "accuracy", "ci_low", "ci_high",
    "forgot", "learned", "significantly_worse",
]  # fmt: skip


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def report_csv(report: Report) -> str:
    """The report's figures; text cells (names) are neutralised, numbers are ours."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    roles = {}
    if report.pair is not None:
        roles = {report.pair.original: "original", report.pair.tuned: "tuned"}
    for m in report.models:
        writer.writerow(
            ["model", neutralise(m.model), m.slot, roles.get(m.model, ""), m.scored, m.correct,
             _number(m.accuracy), _number(m.ci_low), _number(m.ci_high), "", "", ""]
        )  # fmt: skip
    if report.pair is not None and report.difference is not None:
        d = report.difference
        writer.writerow(
            ["tuned - original", neutralise(f"{report.pair.tuned} - {report.pair.original}"), "",
             "difference", report.items.scored, "", _number(d.estimate), _number(d.ci_low),
             _number(d.ci_high), len(report.forgot), len(report.learned),
             "true" if d.significantly_worse else "false"]
        )  # fmt: skip
    return buffer.getvalue()
