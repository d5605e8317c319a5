"""Text the app takes in and gives out: valid Unicode (no lone surrogate), no NUL.

A JSON body may carry "\\ud800", which Python decodes to a lone surrogate: a str that cannot be
encoded as UTF-8, so every page and answer showing it failed (a 500). Such text is refused at
the door (`ValidText`, `CleanText`), and what a JSON column already holds is read back with
each lone surrogate replaced by U+FFFD (`json_loads`), so old rows still show.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator

_SURROGATE = re.compile("[\ud800-\udfff]")
# How JSON text spells a surrogate: only text containing one can decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_text(value: str) -> str:
    """The text itself, or a ValueError saying what is wrong with it (pydantic names the field)."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    if _SURROGATE.search(value):
        raise ValueError("must be valid Unicode text (it holds a lone surrogate such as \\ud800)")
    return value


# For an Annotated str: refuse NUL and lone surrogates.
CleanText = AfterValidator(check_text)
ValidText = Annotated[str, CleanText]


def scrub(value: str) -> str:
    """Text that encodes as UTF-8: each lone surrogate becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def scrub_all(value: Any) -> Any:
    """Scrub every string inside decoded JSON (keys too)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_all(v) for v in value]
    if isinstance(value, dict):
        return {scrub_all(k): scrub_all(v) for k, v in value.items()}
    return value


def json_loads(raw: str | bytes) -> Any:
    """json.loads for JSON columns: any lone surrogate in the stored text comes back as U+FFFD.

    Only text spelling a surrogate escape is walked again, so the common case costs one search.
    """
    value = json.loads(raw)
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if _SURROGATE_ESCAPE.search(text):
        return scrub_all(value)
    return value


# Subclasses of str/int/list (a LazyList, enums) and datetimes go to json.dumps as before.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME


def _plain(value: Any) -> Any:
    """json.dumps's fallback for objects that say how (a token's to_json)."""
    to_json = getattr(value, "to_json", None)
    if to_json is None:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return to_json()


def json_dumps(value: Any) -> str:
    """json.dumps for JSON columns; a list of objects with a to_json (a generation's tokens,
    tens of KB) several times faster, through orjson.

    Other values keep json.dumps's exact text (the ratings export relies on its separators).
    orjson writes dataclasses (a TokenInfo) as the dict of their fields, which is what their
    to_json gives. What it would write differently still goes through json.dumps: lone
    surrogates, integers beyond 64 bits (it raises) and NaN/infinity, which it writes as null
    (hence any null falls back).
    """
    if type(value) is list and value and hasattr(value[0], "to_json"):
        try:
            encoded = orjson.dumps(value, option=_ORJSON_OPTIONS)
        except TypeError:
            encoded = b"null"
        if b"null" not in encoded:
            return encoded.decode()
    return json.dumps(value, default=_plain)
