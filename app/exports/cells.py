"""CSV cells that a spreadsheet will not run as formulas (OWASP "CSV injection")."""

from __future__ import annotations

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix a would-be formula with an apostrophe so spreadsheets show it as text."""
    return "'" + cell if cell.startswith(FORMULA_TRIGGERS) else cell
