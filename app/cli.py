"""The `playground` command: serve the app, migrate the database, run a fake model server."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from app.config import ConfigError, load_models_file, load_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    if args.models is not None:
        os.environ["PLAYGROUND_MODELS_FILE"] = str(args.models)
    settings = load_settings()
    models = load_models_file(settings.models_file)
    app = create_app(settings, models)
    print(f"Playground on http://{args.host}:{args.port}  (models from {settings.models_file})")
    for model in models.models:
        print(f"  {model.name:<28} {model.kind.value:<5} {model.url}  ({model.model})")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    from app.db import create_engine
    from app.migrate import upgrade_to_head

    settings = load_settings()
    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("database is at the latest schema")
    return 0


def _fake_server(args: argparse.Namespace) -> int:
    from app.engines import fake_vllm

    argv = ["--port", str(args.port), "--served-model-name", args.served_model_name]
    argv += ["--token-delay", str(args.token_delay)]
    fake_vllm.main(argv)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="playground", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the web app")
    serve.add_argument("--models", type=Path, help="models file (TOML); default: models.toml")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=_db_upgrade)

    fake = commands.add_parser(
        "fake-server", help="a fake vLLM-compatible server for development and tests (no model)"
    )
    fake.add_argument("--port", type=int, default=8001)
    fake.add_argument("--served-model-name", default="fake-model")
    fake.add_argument("--token-delay", type=float, default=0.03)
    fake.set_defaults(handler=_fake_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; configuration problems end with a one-line message and exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"playground: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
