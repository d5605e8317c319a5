"""The queue page's forms as API inputs: keys pressed (or buttons) to a VoteInput."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from app.annotation.assign import SHOWN_LETTERS
from app.annotation.schemas import TaskInput
from app.errors import InvalidInput

# Two answers: 1 = the first shown wins, 2 = the second, 3 = a tie, 4 = both bad.
PICKS = {
    "1": {"winner": "a"},
    "2": {"winner": "b"},
    "3": {"winner": "tie"},
    "4": {"winner": "both_bad"},
}


def _text(form: FormData, name: str, limit: int = 100) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > limit:
        raise InvalidInput(f"{name}: at most {limit} characters")
    return value.strip()


def verdict(form: FormData, answers: int, rater: str) -> dict[str, Any]:
    """The vote a queue form says: `pick` (two answers), `order` (digits best first: the
    answers' numbers as shown; the last may be left out) or `all_bad`."""
    vote: dict[str, Any] = {"rater": rater}
    ids = {}
    for letter in SHOWN_LETTERS[:answers]:
        value = _text(form, f"g_{letter}", 12)
        if value.isascii() and value.isdigit():
            ids[letter] = int(value)
    if len(ids) == answers:
        vote["generation_ids"] = ids
    pick, order = _text(form, "pick"), _text(form, "order")
    if _text(form, "all_bad"):
        return vote | {"all_bad": True}
    if pick:
        if answers != 2 or pick not in PICKS:
            raise InvalidInput("pick 1-4 is for two answers: rank these by their numbers")
        return vote | PICKS[pick]
    numbers = [c for c in order if not c.isspace() and c not in ",>"]
    valid = [str(n) for n in range(1, answers + 1)]
    if not numbers or any(c not in valid for c in numbers) or len(set(numbers)) != len(numbers):
        raise InvalidInput(f"rank the answers by their numbers (1-{answers}), best first, e.g. 213")
    if len(numbers) == answers - 1:
        numbers += [n for n in valid if n not in numbers]
    if len(numbers) != answers:
        raise InvalidInput(f"rank every answer (1-{answers}), best first")
    return vote | {"ranking": [[SHOWN_LETTERS[int(n) - 1]] for n in numbers]}


def task_input(form: FormData) -> TaskInput:
    """The run page's rating-task form."""
    overlap = _text(form, "overlap", 3) or "1"
    values = {
        "overlap": int(overlap) if overlap.isascii() and overlap.isdigit() else -1,
        "guidelines": _text(form, "guidelines", 5000),
        "reveal_names_after_judging": form.get("reveal") == "on",
        "blind": form.get("blind") == "on",
        "random_positions": form.get("random_positions") == "on",
    }
    try:
        return TaskInput.model_validate(values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InvalidInput(f"{problem['loc'][0]}: {problem['msg']}") from exc
