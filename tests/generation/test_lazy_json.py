"""The lazily decoded tokens column reads back exactly what was stored."""

from __future__ import annotations

import copy
import json

from app.generation.lazy_json import LazyList


def test_lazy_list_decodes_on_first_use_and_behaves_as_a_list() -> None:
    items = [{"token": "a", "logprob": -0.5}, {"token": "b\ud800", "logprob": -1.0}]
    lazy = LazyList(json.dumps(items))
    assert lazy  # truthiness needs no decoding
    assert lazy._raw is not None
    assert len(lazy) == 2
    assert lazy._raw is None
    assert lazy[0] == items[0]
    assert lazy[:1] == items[:1]
    # Stored lone surrogates come back replaced, as from any JSON column.
    assert [t["token"] for t in lazy] == ["a", "b\ufffd"]
    assert copy.deepcopy(LazyList(json.dumps(items)))[0] == items[0]
    assert json.dumps(LazyList("[1, 2]").materialised()) == "[1, 2]"


def test_empty_lazy_list_is_falsy() -> None:
    assert not LazyList("[]")
    assert LazyList("[]") == []
