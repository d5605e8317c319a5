"""Score one answer against its item's reference: exact, contains, regex or choice.

Pure functions of (reference, answer text), so a stored score and one computed for an export
agree. SCORER_VERSION goes up whenever a rule changes; stored scores of an older version are
recomputed when a report is asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import regex

SCORER_VERSION = 1
# User-written patterns run on model text: the search is cut off after this long, and only
# this much of an answer is searched (answers are bounded by max_tokens anyway).
REGEX_TIMEOUT_SECONDS = 0.25
MAX_SCORED_CHARS = 20_000
# The option letters a choice answer may give (widened up to the reference's letter).
CHOICE_LETTERS = "ABCDE"
_SPACE = re.compile(r"\s+")
# "Answer: B", "answer is (B)", "**Answer:** B", "the answer is: B." (simple-evals' form, widened).
_ANSWER_IS = r"(?i:answer)\s*(?::|(?i:is)\s*:?)\s*[\(\[]?\s*([{letters}])\b"
# A standalone capital letter: not part of a word, a contraction or an abbreviation like "A.I".
_STANDALONE = r"(?<![\w'\u2019])([{letters}])(?![\w'\u2019]|\.\w)"
# The article "A" ("A cat is ..."): a capital A then a lower-case word is not an option.
_ARTICLE = re.compile(r"A\s+[a-z]")


@dataclass(frozen=True)
class Score:
    """Whether an answer is right, and a short note on why (shown in the report)."""

    correct: bool
    detail: str


def normalise(text: str) -> str:
    """Case-folded, trimmed, with every run of whitespace as one space."""
    return _SPACE.sub(" ", text).strip().casefold()


def score(reference: dict[str, Any], text: str) -> Score:
    """Score an answer against a reference {"type": ..., "value": ...}."""
    kind, value = reference.get("type"), str(reference.get("value", ""))
    text = text[:MAX_SCORED_CHARS]
    if kind == "exact":
        return _exact(value, text)
    if kind == "contains":
        found = normalise(value) in normalise(text)
        return Score(found, "contains it" if found else "does not contain it")
    if kind == "regex":
        return _regex(value, text)
    if kind == "choice":
        return _choice(value, text)
    return Score(False, f"unknown reference type {kind!r}")


def _exact(value: str, text: str) -> Score:
    same = normalise(value) == normalise(text)
    return Score(same, "equal" if same else "not equal")


def _regex(pattern: str, text: str) -> Score:
    """A search (anywhere in the answer), cut off after REGEX_TIMEOUT_SECONDS."""
    try:
        # concurrent: the search lets go of the GIL, so a slow pattern stalls only its thread.
        found = regex.search(pattern, text, timeout=REGEX_TIMEOUT_SECONDS, concurrent=True)
    except TimeoutError:
        return Score(False, f"pattern took over {REGEX_TIMEOUT_SECONDS} s: counted wrong")
    except regex.error as exc:
        return Score(False, f"pattern does not compile: {exc}"[:300])
    except RecursionError:  # the parser recurses per group: ((((...)))) a few hundred deep
        return Score(False, "pattern nests too deeply: counted wrong")
    if found is None:
        return Score(False, "no match")
    return Score(True, f"matched {found.group(0)[:80]!r}")


def option_letters(reference_letter: str) -> str:
    """A-E, or up to the reference's letter when it lies beyond E."""
    last = max("E", reference_letter.upper()[:1] or "E")
    return "".join(chr(c) for c in range(ord("A"), ord(last) + 1))


def parse_choice(text: str, letters: str = CHOICE_LETTERS) -> str | None:
    """The option letter an answer gives: after "Answer:" if it says so, else the first
    standalone capital letter among `letters` (not the article "A" before a word)."""
    text = text.replace("*", "")  # markdown bold around the letter or the word
    said = re.search(_ANSWER_IS.format(letters=letters), text)
    if said:
        return said.group(1)
    for match in re.finditer(_STANDALONE.format(letters=letters), text):
        if match.group(1) == "A" and _ARTICLE.match(text, match.start()):
            continue
        return match.group(1)
    return None


def _choice(value: str, text: str) -> Score:
    expected = value.strip().upper()
    given = parse_choice(text, option_letters(expected))
    if given is None:
        return Score(False, "no option letter found")
    return Score(given == expected, f"answered {given}")
