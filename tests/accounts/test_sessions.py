"""Sign-in, sign-out, session cookies, password hashing, invites, modes."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.accounts.service import AccountService
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict
from app.identity.models import Account, Invite, Role
from app.identity.secrets import verify_password
from app.identity.sessions import SESSION_COOKIE
from tests.accounts.conftest import PASSWORD, Maker, add_account, csrf_token, sign_in, state_of


async def test_passwords_are_stored_as_argon2id_hashes_only(team_app: FastAPI) -> None:
    await add_account(team_app, "rita")
    async with state_of(team_app).sessions() as session:
        account = (await session.scalars(select(Account))).one()
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert verify_password(PASSWORD, account.password_hash)
    assert not verify_password(PASSWORD + "x", account.password_hash)


async def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_it(
    make_client: Maker, team_app: FastAPI
) -> None:
    client = await make_client()
    await add_account(team_app, "rita")
    assert (await client.get("/")).status_code == 303
    response = await sign_in(client, "rita")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert (await client.get("/")).status_code == 200
    old = client.cookies[SESSION_COOKIE]
    # Sign-out is a POST with the CSRF token.
    assert (await client.post("/logout")).status_code == 403
    token = await csrf_token(client, "/account")
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    assert (await client.get("/")).status_code == 303
    # The old cookie, replayed, no longer works either (the account's sessions ended).
    client.cookies.set(SESSION_COOKIE, old)
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_wrong_password_and_unknown_user_are_refused_alike(
    make_client: Maker, team_app: FastAPI
) -> None:
    client = await make_client()
    await add_account(team_app, "rita")
    wrong = await sign_in(client, "rita", "not the password")
    unknown = await sign_in(client, "nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert SESSION_COOKIE not in client.cookies


async def test_a_tampered_or_forged_session_cookie_is_anonymous(
    make_client: Maker, team_app: FastAPI
) -> None:
    client = await make_client("rita")
    await add_account(team_app, "ada", Role.ADMIN)  # id 2: the forged payload names her
    value = client.cookies[SESSION_COOKIE]
    me = (await client.get("/api/v1/me")).json()
    for forged in (
        value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
        value.replace(value.split(".")[0], "WzIsMF0"),
        "garbage",
        "x" * 5000,
    ):
        client.cookies.set(SESSION_COOKIE, forged)
        assert (await client.get("/api/v1/me")).status_code == 401, forged
    assert me["username"] == "rita"


async def test_sign_in_never_redirects_off_site(make_client: Maker, team_app: FastAPI) -> None:
    client = await make_client()
    await add_account(team_app, "rita")
    token = await csrf_token(client)
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        form = {"username": "rita", "password": PASSWORD, "csrf_token": token, "next": target}
        response = await client.post("/login", data=form)
        assert response.headers["location"] == "/", target


async def test_a_disabled_account_is_signed_out_at_once(
    make_client: Maker, team_app: FastAPI
) -> None:
    rater = await make_client("rita")
    admin = await make_client("ada", Role.ADMIN)
    async with state_of(team_app).sessions() as session:
        rita = (await session.scalars(select(Account).where(Account.username == "rita"))).one()
    response = await admin.post(f"/admin/accounts/{rita.id}/disabled", data={"disabled": "true"})
    assert response.status_code == 303
    assert (await rater.get("/api/v1/me")).status_code == 401
    assert (await sign_in(await make_client(), "rita")).status_code == 401


async def invite_link(admin: httpx.AsyncClient, role: str = "rater") -> str:
    page = await admin.post("/admin/invites", data={"role": role})
    assert page.status_code == 200, page.text
    start = page.text.index("/invite/")
    return page.text[start : page.text.index("<", start)]


async def test_an_invite_link_works_once(make_client: Maker) -> None:
    admin = await make_client("ada", Role.ADMIN)
    link = await invite_link(admin)
    guest = await make_client()
    token = await csrf_token(guest, link)
    form = {"username": "newbie", "password": PASSWORD, "password_again": PASSWORD,
            "csrf_token": token}  # fmt: skip
    response = await guest.post(link, data=form)
    assert response.status_code == 303
    me = (await guest.get("/api/v1/me")).json()
    assert me["username"] == "newbie" and me["role"] == "rater"
    other = await make_client()
    assert (await other.get(link)).status_code == 404
    token = await csrf_token(other)
    again = await other.post(link, data=form | {"username": "second", "csrf_token": token})
    assert again.status_code == 404


async def test_an_expired_invite_link_is_refused(make_client: Maker, team_app: FastAPI) -> None:
    admin = await make_client("ada", Role.ADMIN)
    link = await invite_link(admin)
    async with state_of(team_app).sessions() as session:
        await session.execute(update(Invite).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert (await (await make_client()).get(link)).status_code == 404


async def test_a_rater_cannot_invite(make_client: Maker) -> None:
    rater = await make_client("rita")
    assert (await rater.post("/admin/invites", data={"role": "admin"})).status_code == 403


def test_production_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(ValueError, match="PLAYGROUND_SECRET_KEY"):
        Settings(env="production", allowed_hosts="app")
    with pytest.raises(ValueError, match="PLAYGROUND_AUTH=local"):
        Settings(env="production", allowed_hosts="app", secret_key="k" * 32, auth="local")
    production = Settings(env="production", allowed_hosts="app", secret_key="k" * 32)
    assert production.resolved_auth() == "team" and production.cookies_secure()


def test_local_mode_is_the_default_on_this_machine_only() -> None:
    assert Settings().resolved_auth() == "local"
    assert Settings().resolved_auth("127.0.0.1") == "local"
    assert Settings().resolved_auth("0.0.0.0") == "team"
    assert Settings(auth="local").resolved_auth("0.0.0.0") == "local"


async def test_sign_in_pauses_after_repeated_wrong_passwords(
    make_client: Maker, team_app: FastAPI
) -> None:
    client = await make_client()
    await add_account(team_app, "rita")
    for _ in range(5):
        assert (await sign_in(client, "rita", "wrong password")).status_code == 401
    paused = await sign_in(client, "rita")  # even the right password waits
    assert paused.status_code == 429
    assert "too many wrong passwords" in paused.text
    assert 1 <= int(paused.headers["Retry-After"]) <= 300
    async with state_of(team_app).sessions() as session:
        await session.execute(
            update(Account).values(last_failed_at=utcnow() - timedelta(minutes=6))
        )
        await session.commit()
    assert (await sign_in(client, "rita")).status_code == 303


async def test_a_name_taken_at_the_same_moment_is_a_conflict_not_a_500(
    team_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_account(team_app, "alice")
    async with state_of(team_app).sessions() as session:
        service = AccountService(session)

        async def nobody_yet(*args: object, **kwargs: object) -> None:
            return None  # as a sign-up racing another sees before the other commits

        monkeypatch.setattr(session, "scalar", nobody_yet)
        with pytest.raises(Conflict, match="taken"):
            await service.create("alice", PASSWORD, Role.RATER)
        monkeypatch.undo()
        # The transaction is still usable after the refused name.
        await service.create("bob", PASSWORD, Role.RATER)
        await session.commit()
