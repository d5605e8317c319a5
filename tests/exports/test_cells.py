"""CSV formula neutralisation (OWASP "CSV injection"), including padded and full-width signs."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from app.spreadsheet import neutralise

PLAIN_FORMULAS = ["=1+1", "+SUM(1,2)", "-2 points", "@mallory", "\tx", "\rx", "=", "-"]
PADDED_FORMULAS = [
    "  =1+1",
    "\t=1+1",
    '\n=HYPERLINK("http://evil.example")',
    "\r\n+1",
    " \t\n @SUM(A1)",
    "\u200b=1+1",
    "\ufeff=1+1",
    "\u2060-1",
    "\u00a0=1",
    "\u3000=1",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM(A1)",
    "  \uff1d1",
    "\u200b \uff0b1",
]
LEFT_ALONE = [
    "",
    "hello",
    "a=b",
    "1+1",
    "  hello",
    "\nhello",
    "\u200bhello",
    "it's",
    "'=already",
    '["END", "\\n\\n"]',
    "x\n=1",
    "ünï ✓",
]


@pytest.mark.parametrize("cell", PLAIN_FORMULAS)
def test_plain_formulas_get_an_apostrophe_as_before(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", PADDED_FORMULAS)
def test_formulas_after_whitespace_invisible_or_full_width_get_an_apostrophe(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", LEFT_ALONE)
def test_other_cells_are_unchanged(cell: str) -> None:
    assert neutralise(cell) == cell


async def test_the_ratings_export_neutralises_a_padded_formula_comment(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/api/v1/comparisons", json={"prompt": "hi", "params": {"max_tokens": 3}}
    )
    assert created.status_code == 201, created.text
    comment = '\u200b =HYPERLINK("http://evil.example")'
    voted = await client.post(
        f"/api/v1/comparisons/{created.json()['id']}/votes",
        json={"winner": "a", "rater": "\uff20mallory", "comment": comment},
    )
    assert voted.status_code == 201, voted.text
    export = await client.get("/api/v1/exports/ratings.csv")
    (row,) = list(csv.DictReader(io.StringIO(export.text)))
    assert row["comment"] == "'" + comment
    assert row["rater"] == "'\uff20mallory"
