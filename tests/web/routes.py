"""Every route of the app with its methods, however FastAPI nests included routers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def app_routes(app: FastAPI) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every HTTP route, mounts left out."""
    seen: set[tuple[str, frozenset[str]]] = set()

    def walk(routes: list[Any]) -> Iterator[tuple[str, set[str]]]:
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if contexts is not None:  # FastAPI >= 0.16x: an included router
                for context in contexts():
                    yield context.path, set(context.methods or ())
            elif getattr(route, "methods", None) is not None:
                yield route.path, set(route.methods)

    for path, methods in walk(list(app.routes)):
        key = (path, frozenset(methods))
        if key not in seen:
            seen.add(key)
            yield path, methods


def path_params(path: str) -> list[str]:
    """The names of a route's path parameters."""
    return PARAM.findall(path)
