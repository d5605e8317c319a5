"""Parse the HTML forms into the same validated inputs the JSON API uses."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from app.comparisons.models import SLOTS
from app.comparisons.schemas import ComparisonInput, TurnInput, VoteInput
from app.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)
PARAM_FIELDS = ("temperature", "top_p", "top_k", "max_tokens", "seed", "repetition_penalty")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _params(form: FormData) -> dict[str, Any]:
    """Sampling fields; blank means default (and a blank seed means a fresh random one)."""
    params: dict[str, Any] = {
        name: _text(form, name).strip() for name in PARAM_FIELDS if _text(form, name).strip()
    }
    stops = [line for line in _text(form, "stop").splitlines() if line.strip()]
    # Escapes let people type a newline stop such as \n\n in a one-line field.
    params["stop"] = [s.replace("\\n", "\n").replace("\\t", "\t") for s in stops]
    return params


def _number(value: str, field: str, what: str) -> int:
    """A small whole number typed in a form (ASCII digits only: int() also takes "²" or
    thousands of digits, and fails on them)."""
    if not (value.isascii() and value.isdecimal() and len(value) <= 9):
        raise InvalidInput(f"{field}: {what}")
    return int(value)


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"] if p != "params")
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise InvalidInput("; ".join(problems)) from exc


def comparison_input(form: FormData) -> ComparisonInput:
    """The new-comparison form: one picker per column (blank pickers are left out)."""
    pickers = [f"model_{slot}" for slot in SLOTS]
    models = [_text(form, name) for name in pickers if _text(form, name)]
    return _validate(
        ComparisonInput,
        {
            "prompt": _text(form, "prompt"),
            "system": _text(form, "system") or None,
            "models": models or None,
            "base_format": _text(form, "base_format") or "raw",
            "blind": bool(_text(form, "blind")),
            "params": _params(form),
        },
    )


def turn_input(form: FormData) -> TurnInput:
    """The follow-up form."""
    return _validate(TurnInput, {"prompt": _text(form, "prompt"), "params": _params(form)})


def vote_input(form: FormData) -> VoteInput:
    """The vote form: a winner button (two answers), "all bad", or a rank per answer."""
    data: dict[str, Any] = {
        "rater": _text(form, "rater").strip() or None,
        "comment": _text(form, "comment") or None,
    }
    if value := _text(form, "turn").strip():
        data["turn"] = _number(value, "turn", "give the turn's number")
    scores = {}
    seen = {}
    for slot in SLOTS:
        if score := _text(form, f"score_{slot}").strip():
            scores[slot] = _number(score, f"score_{slot}", "give a whole number from 1 to 5")
        # The answers the page showed: a vote never lands on one regenerated since.
        if shown := _text(form, f"seen_{slot}").strip():
            seen[slot] = _number(shown, f"seen_{slot}", "not an answer id")
    if scores:
        data["scores"] = scores
    if seen:
        data["generation_ids"] = seen
    winner = _text(form, "winner")
    if winner == "all_bad" or _text(form, "all_bad"):
        data["all_bad"] = True
    elif winner:
        data["winner"] = winner
    else:
        data["ranking"] = _ranking(form)
    return _validate(VoteInput, data)


def _ranking(form: FormData) -> list[list[str]]:
    """rank_<slot> fields (1 = best; equal numbers are ties) as groups of slots, best first."""
    ranks: dict[str, int] = {}
    for slot in SLOTS:
        value = _text(form, f"rank_{slot}").strip()
        if not value:
            continue
        ranks[slot] = _number(value, f"rank_{slot}", "give a place number (1 = best)")
    if not ranks:
        raise InvalidInput("rank every answer (1 = best, equal numbers for a tie) or mark all bad")
    return [
        sorted(s for s, r in ranks.items() if r == place) for place in sorted(set(ranks.values()))
    ]
