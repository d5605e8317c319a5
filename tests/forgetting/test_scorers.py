"""Each scorer on ordinary answers and edge cases; a catastrophic regex is cut off."""

from __future__ import annotations

import time

import pytest

from app.forgetting.scorers import MAX_SCORED_CHARS, normalise, option_letters, parse_choice, score


def right(kind: str, value: str, text: str) -> bool:
    return score({"type": kind, "value": value}, text).correct


def test_normalise_trims_folds_case_and_collapses_whitespace() -> None:
    assert normalise("  Straße \n\t IS  big ") == "strasse is big"


@pytest.mark.parametrize(
    ("value", "text", "expected"),
    [
        ("Paris", "Paris", True),
        ("Paris", "  paris\n", True),
        ("New York", "new   york", True),
        ("Paris", "Paris.", False),  # punctuation is part of the answer
        ("Paris", "It is Paris", False),
        ("Paris", "", False),
    ],
)
def test_exact(value: str, text: str, expected: bool) -> None:
    assert right("exact", value, text) is expected


@pytest.mark.parametrize(
    ("value", "text", "expected"),
    [
        ("Paris", "The capital is PARIS.", True),
        ("new york", "It is New\nYork city", True),
        ("Paris", "Parisian", True),  # a plain substring, as documented
        ("Madrid", "The capital is Paris.", False),
        ("Paris", "", False),
    ],
)
def test_contains(value: str, text: str, expected: bool) -> None:
    assert right("contains", value, text) is expected


def test_regex_searches_anywhere_and_is_case_sensitive_unless_asked() -> None:
    assert right("regex", r"\b1[0-9]{3}\b", "It was in 1789, I think.")
    assert not right("regex", r"^1789$", "It was in 1789.")
    assert not right("regex", "paris", "Paris")
    assert right("regex", "(?i)paris", "Paris")
    found = score({"type": "regex", "value": r"\d+"}, "about 42 of them")
    assert found.detail == "matched '42'"


def test_a_catastrophic_regex_is_cut_off_and_counted_wrong() -> None:
    started = time.monotonic()
    result = score({"type": "regex", "value": r"(a|aa)+$"}, "a" * 60 + "b")
    assert not result.correct
    assert "counted wrong" in result.detail
    # Bounded: cut off well before the search would end (it would take years).
    assert time.monotonic() - started < 30


def test_a_pattern_that_does_not_compile_is_wrong_not_an_error() -> None:
    result = score({"type": "regex", "value": "a("}, "a(")
    assert not result.correct and "does not compile" in result.detail


def test_only_the_start_of_a_huge_answer_is_scored() -> None:
    text = "x" * MAX_SCORED_CHARS + "needle"
    assert not right("contains", "needle", text)
    assert right("contains", "needle", "needle" + text)


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Answer: B", "B"),
        ("answer: c", None),  # options are capital letters
        ("The answer is (C).", "C"),
        ("**Answer:** D", "D"),
        ("The answer is: E", "E"),
        ("B", "B"),
        ("(B) because it is larger", "B"),
        ("C. Paris", "C"),
        ("I think it is C, not D.", "C"),
        ("A cat is not a dog, so B", "B"),  # the article A is skipped
        ("A", "A"),
        ("A) Paris", "A"),
        ("Answer: Berlin, so D", "D"),  # "Answer: B..." of a word is no letter
        ("It's D", "D"),
        ("A.I. says E", "E"),
        ("FBI agents say so", None),
        ("", None),
    ],
)
def test_parse_choice(text: str, letter: str | None) -> None:
    assert parse_choice(text) == letter


def test_answer_line_wins_over_an_earlier_letter() -> None:
    assert parse_choice("Between B and C, the answer is: C") == "C"


def test_choice_scoring_and_letters_beyond_e() -> None:
    assert right("choice", "b", "Answer: B")
    assert not right("choice", "C", "Answer: B")
    assert score({"type": "choice", "value": "C"}, "no idea").detail == "no option letter found"
    assert option_letters("C") == "ABCDE"
    assert option_letters("G") == "ABCDEFG"
    assert right("choice", "G", "Answer: G")
    assert parse_choice("Answer: G") is None  # beyond A-E without such a reference


def test_unknown_reference_type_is_wrong() -> None:
    assert not right("fuzzy", "x", "x")
