"""Parse the HTML forms into the same validated inputs the JSON API uses."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

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
    """The new-comparison form."""
    models = [_text(form, "model_a"), _text(form, "model_b")]
    return _validate(
        ComparisonInput,
        {
            "prompt": _text(form, "prompt"),
            "system": _text(form, "system") or None,
            "models": models if all(models) else None,
            "base_format": _text(form, "base_format") or "raw",
            "params": _params(form),
        },
    )


def turn_input(form: FormData) -> TurnInput:
    """The follow-up form."""
    return _validate(TurnInput, {"prompt": _text(form, "prompt"), "params": _params(form)})


def vote_input(form: FormData) -> VoteInput:
    """The vote form."""
    data: dict[str, Any] = {
        "winner": _text(form, "winner"),
        "rater": _text(form, "rater"),
        "comment": _text(form, "comment") or None,
    }
    for name in ("turn", "score_a", "score_b"):
        if value := _text(form, name).strip():
            data[name] = int(value) if value.isdecimal() else value  # scores are strict ints
    return _validate(VoteInput, data)
