"""CSV cells a spreadsheet will not run as formulas (OWASP "CSV injection").

A cell that starts with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` (as
before), and so does one where such a sign, or its full-width form (U+FF1D, U+FF0B, U+FF0D,
U+FF20, which some spreadsheets and input methods take as the same), comes after leading
whitespace (spaces, tabs, newlines) or invisible characters (zero-width space and joiners,
word joiner, BOM), which spreadsheets may skip. Every other cell is written unchanged.
"""

from __future__ import annotations

import re

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PADDING = r"\s\u180e\u200b-\u200f\u2060-\u2064\ufeff"
_SIGNS = "=+\\-@\uff1d\uff0b\uff0d\uff20"
_PADDED_FORMULA = re.compile(f"[{_PADDING}]*[{_SIGNS}]")


def neutralise(cell: str) -> str:
    """Prefix a would-be formula with an apostrophe so spreadsheets show it as text."""
    # Most cells start with a letter or digit, which neither pads nor signs a formula.
    if not cell or cell[0].isalnum():
        return cell
    if cell.startswith(FORMULA_TRIGGERS) or _PADDED_FORMULA.match(cell):
        return "'" + cell
    return cell
