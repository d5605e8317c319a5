"""`playground users create-admin NAME`: the first admin (then admins invite everyone else)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from app.accounts.service import AccountService
from app.config import load_settings
from app.errors import PlaygroundError
from app.identity.models import Role


def read_password(stdin: Any = None) -> str:
    """Ask twice on a terminal; otherwise the first line of stdin (for scripts)."""
    stream = stdin or sys.stdin
    if not stream.isatty():
        return str(stream.readline()).rstrip("\r\n")
    first = getpass.getpass("Password (10+ characters): ")
    if getpass.getpass("Password again: ") != first:
        raise PlaygroundError("the two passwords differ")
    return first


def _create_admin(args: argparse.Namespace) -> int:
    from app.db import create_engine, create_sessionmaker
    from app.migrate import upgrade_to_head

    settings = load_settings()
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        password = read_password()
    except PlaygroundError as exc:
        print(f"playground: {exc.message}", file=sys.stderr)
        return 1

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
            async with create_sessionmaker(engine)() as session:
                await AccountService(session).create(args.name, password, Role.ADMIN)
                await session.commit()
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except PlaygroundError as exc:
        print(f"playground: {exc.message}", file=sys.stderr)
        return 1
    print(f"admin {args.name!r} created; sign in at /login (team mode: PLAYGROUND_AUTH=team)")
    return 0


def add_commands(commands: Any) -> None:
    """Add `users create-admin` to the CLI's subcommands."""
    users = commands.add_parser("users", help="accounts (team mode)")
    sub = users.add_subparsers(dest="users_command", required=True)
    create = sub.add_parser(
        "create-admin", help="create an admin account (password prompted, or read from stdin)"
    )
    create.add_argument("name", help="the username (letters, digits, '.', '_', '-')")
    create.set_defaults(handler=_create_admin)
