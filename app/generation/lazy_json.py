"""A JSON column whose list is decoded only when someone looks inside it.

A generation's `tokens` holds every token with its logprob and alternatives (tens of KB per
answer). Pages, the SSE stream and votes load whole generations but almost never read their
tokens, and decoding that JSON was the largest single cost of a comparison (profiled: ~14% of
the app's CPU at 32 comparisons at once). Deferring the column instead would turn each forgotten
read into an async lazy load (MissingGreenlet); this type keeps every reader working and only
moves the decoding to the first real use. Drivers that decode JSON themselves (PostgreSQL) hand
over a list, which is kept as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, SupportsIndex

from sqlalchemy import JSON, TypeDecorator
from sqlalchemy.engine import Dialect

from app.text import json_loads


class LazyList(list[Any]):
    """A list filled from its JSON text on first use (length, items, iteration, equality)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: str) -> None:
        super().__init__()
        self._raw: str | None = raw

    def _load(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None
            super().extend(json_loads(raw))

    def __bool__(self) -> bool:
        # Our serializer writes an empty list as "[]": anything longer holds an item.
        return len(self._raw.strip()) > 2 if self._raw is not None else super().__len__() > 0

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def __iter__(self) -> Iterator[Any]:
        self._load()
        return super().__iter__()

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        self._load()
        return super().__getitem__(index)

    def __eq__(self, other: object) -> bool:
        self._load()
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self) -> str:
        self._load()
        return super().__repr__()

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        # Copies and pickles (json.dumps of a list subclass reads the C array) get a plain list.
        self._load()
        return (list, (list(super().__iter__()),))

    def materialised(self) -> list[Any]:
        """A plain list of the items (for encoders that read the list's storage directly)."""
        self._load()
        return list(super().__iter__())


class LazyJSONList(TypeDecorator[Any]):
    """JSON, read back as a LazyList when the driver hands over text."""

    impl = JSON
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        """Text becomes a LazyList (JSON null: None); decoded values pass through."""
        decode = self.impl_instance.result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, str):
                stripped = value.lstrip()
                if stripped.startswith("["):
                    return LazyList(value)
                return decode(value) if decode is not None else json_loads(value)
            return value

        return process
