"""The role x route table: every route has a rule, and each role gets what its rule says."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.accounts.rules import RULES, Access, rule_for
from app.config import ModelsFile, Settings
from app.identity.models import Role
from app.main import create_app
from tests.accounts.conftest import Maker
from tests.web.routes import app_routes

# Concrete values for path parameters: rows that do not exist (OWNER checks pass, then 404).
PARAMS = {"conversation_id": "nosuchconversation", "token": "x" * 43, "action": "pause"}
# Changes the caller's own session: tested on its own (tests/accounts/test_sessions.py).
SKIP = {("POST", "/logout")}


def concrete(path: str) -> str:
    """The path with a value for each parameter."""
    for name in [p.split("}")[0] for p in path.split("{")[1:]]:
        value = PARAMS.get(name, "999999" if name.endswith("_id") else "x")
        path = path.replace("{" + name + "}", value)
    return path


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route, HEAD left out (it follows GET)."""
    return sorted(
        (method, path) for path, methods in app_routes(app) for method in methods - {"HEAD"}
    )


def test_every_route_has_exactly_one_rule(settings: Settings, models: ModelsFile) -> None:
    app = create_app(settings.model_copy(update={"auth": "team"}), models)
    found = routes(app)
    missing = [f"{m} {p}" for m, p in found if rule_for(m, p) is None]
    assert not missing, (
        "routes without an access rule: add a line for each to RULES in app/accounts/rules.py: "
        + ", ".join(missing)
    )
    stale = sorted(set(RULES) - set(found))
    assert not stale, f"rules for routes that do not exist: {stale}"


def test_only_public_routes_escape_the_app_wide_guard(
    settings: Settings, models: ModelsFile
) -> None:
    # The guard is an app-wide FastAPI dependency: Starlette routes (the docs) do not run it.
    from fastapi.routing import APIRoute

    app = create_app(settings.model_copy(update={"auth": "team"}), models)
    for route in app.routes:
        if getattr(route, "methods", None) and not isinstance(route, APIRoute):
            for method in route.methods - {"HEAD"}:  # type: ignore[attr-defined]
                assert RULES[(method, route.path)].access is Access.PUBLIC  # type: ignore[attr-defined]


async def call(client: httpx.AsyncClient, method: str, path: str) -> httpx.Response:
    if method == "GET":
        return await client.get(path)
    if path.startswith("/api/"):
        return await client.request(method, path, json={})
    return await client.request(method, path, data={"x": "1"})


def signed_out(response: httpx.Response, path: str) -> bool:
    """An anonymous caller was turned away: 401 for the API, a redirect to sign in for pages."""
    if path.startswith("/api/"):
        return response.status_code == 401 and "WWW-Authenticate" in response.headers
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def admin_only(response: httpx.Response) -> bool:
    return response.status_code == 403 and "only an admin" in response.text


async def test_each_role_gets_what_the_table_says(team_app: FastAPI, make_client: Maker) -> None:
    anonymous = await make_client()
    rater = await make_client("rita", Role.RATER)
    admin = await make_client("ada", Role.ADMIN)
    problems = []
    for method, path in routes(team_app):
        if (method, path) in SKIP:
            continue
        rule = rule_for(method, path)
        assert rule is not None
        url = concrete(path)
        got = {
            "anonymous": await call(anonymous, method, url),
            "rater": await call(rater, method, url),
            "admin": await call(admin, method, url),
        }
        if rule.access is Access.PUBLIC:
            expected = {"anonymous": True, "rater": True, "admin": True}
            ok = {k: not signed_out(r, path) and not admin_only(r) for k, r in got.items()}
        else:
            expected = {
                "anonymous": True,
                "rater": rule.access is not Access.ADMIN,
                "admin": True,
            }
            ok = {
                "anonymous": signed_out(got["anonymous"], path),
                "rater": not admin_only(got["rater"]) and not signed_out(got["rater"], path),
                "admin": not admin_only(got["admin"]) and not signed_out(got["admin"], path),
            }
            if rule.access is Access.ADMIN:
                ok["rater"] = not admin_only(got["rater"])
                expected["rater"] = False
        for who, response in got.items():
            assert response.status_code < 500, (method, path, who, response.text[:200])
            if ok[who] != expected[who]:
                problems.append(f"{who} {method} {path}: {response.status_code}")
    assert not problems, problems


async def test_a_route_without_a_rule_is_refused_in_team_mode(
    team_settings: Settings, models: ModelsFile, make_client: Maker
) -> None:
    from asgi_lifespan import LifespanManager

    app = create_app(team_settings, models)

    @app.get("/unruled")
    async def unruled() -> dict[str, str]:
        return {}

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/unruled")
    assert response.status_code == 403
    assert "no access rule" in response.text


@pytest.mark.parametrize("path", ["/leaderboard", "/api/v1/exports/dpo.jsonl", "/runs"])
async def test_a_rater_gets_a_403_page_for_admin_pages(make_client: Maker, path: str) -> None:
    rater = await make_client("rita")
    response = await rater.get(path)
    assert response.status_code == 403
    assert "only an admin may do this" in response.text


def test_everyone_s_judgements_and_the_management_routes_stay_admin_only() -> None:
    # Runs are left out: a run's annotation queue is for raters.
    prefixes = ("/api/v1/exports/", "/admin/", "/leaderboard", "/api/v1/leaderboard", "/raters",
                "/api/v1/raters", "/prompt-sets", "/api/v1/prompt-sets")  # fmt: skip
    for (method, path), rule in RULES.items():
        if path.startswith(prefixes):
            assert rule.access is Access.ADMIN, (method, path)
