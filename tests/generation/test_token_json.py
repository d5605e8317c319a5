"""The JSON columns' serializer: token lists fast, everything else exactly as json.dumps."""

from __future__ import annotations

import json
import math

from app.generation.logprobs import TokenInfo
from app.text import json_dumps, json_loads


def test_a_token_list_is_stored_as_its_to_json_dicts() -> None:
    tokens = [
        TokenInfo(" café", -0.25, [(" café", -0.25), (" tea", -1.5)], 17),
        TokenInfo("日本", -3.0, [], 9),
    ]
    assert json_loads(json_dumps(tokens)) == [t.to_json() for t in tokens]


def test_what_orjson_would_write_differently_goes_through_json() -> None:
    odd = [
        TokenInfo("x", -math.inf, [("x", -math.inf)], 1),  # orjson would write null
        TokenInfo("\ud800", -1.0, [], 2),  # a lone surrogate: orjson refuses it
        TokenInfo("y", None, [], None),
    ]
    for token in odd:
        assert json_dumps([token]) == json.dumps([token.to_json()])


def test_other_values_keep_json_dumps_text() -> None:
    for value in ([{"role": "user", "content": "é"}], {"stop": ["\n"], "seed": None}, [], [1]):
        assert json_dumps(value) == json.dumps(value)
