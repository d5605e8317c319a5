"""The `playground` command: serve the app, migrate the database, add LoRA adapters to a running
app, import prompt sets and run them, run a fake model server."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.accounts import cli as accounts_cli
from app.config import ConfigError, Settings, load_models_file, load_settings
from app.forgetting import cli as forgetting_cli
from app.runs import cli as runs_cli

if TYPE_CHECKING:
    from app.generation.defaults import ModelChoice


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.generation.launcher import LaunchError, LaunchSettings, LocalServers
    from app.generation.prompts import urial_format
    from app.main import create_app
    from app.workers import check_workers, serve_workers

    settings = load_settings()
    # Served beyond this machine without PLAYGROUND_AUTH: team mode (sign-in), never open.
    settings = settings.model_copy(update={"auth": settings.resolved_auth(args.host)})
    check_workers(settings, args.workers)
    urial_format(settings.urial_file)  # a broken format file fails here, not on a prompt
    launch = LaunchSettings(vllm_python=_vllm_python(settings), log_dir=settings.data_dir / "logs")
    choice = _choose_models(args.models, settings, launch.vllm_python)
    servers = LocalServers(launch, progress=_say)
    # Until uvicorn installs its own handlers, SIGTERM must unwind so the servers get stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        models = servers.start(choice.models)
        servers.watch(lambda message: _say(f"WARNING: {message}"))
        app = create_app(settings, models, local_servers=servers, notice=choice.notice)
        workers = f" ({args.workers} workers)" if args.workers > 1 else ""
        _say(f"Playground on http://{args.host}:{args.port}{workers}")
        for model in models.models:
            _say(f"  {model.name:<28} {model.kind.value:<5} {model.url}  ({model.model})")
        if args.workers > 1:
            return serve_workers(app, args.host, args.port, args.workers, args.log_level)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    except LaunchError as exc:
        _say(f"playground: could not start a model server: {exc}")
        return 1
    finally:
        servers.close()
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _vllm_python(settings: Settings) -> Path:
    from app.generation.launcher import DEFAULT_VLLM_PYTHON

    return settings.vllm_python or DEFAULT_VLLM_PYTHON


def _choose_models(path: Path | None, settings: Settings, vllm_python: Path) -> ModelChoice:
    """The models file if there is one; else the real default pair, or the demo pair offline."""
    from app.generation import defaults

    path = path or (settings.models_file if settings.models_file.exists() else None)
    if path is not None:
        return defaults.ModelChoice(load_models_file(path))
    if not vllm_python.exists():
        raise ConfigError(
            f"no models file ({settings.models_file}) and no vLLM to launch the default models "
            f"({vllm_python} is missing): run `bash scripts/setup-vllm.sh`, or pass --models"
        )
    _say(f"No models file: using {defaults.DEFAULT_BASE} and {defaults.DEFAULT_CHAT}.")
    problem = defaults.hub_problem(vllm_python, [defaults.DEFAULT_BASE, defaults.DEFAULT_CHAT])
    if problem is None:
        return defaults.ModelChoice(defaults.default_models())
    _say(f"The default models cannot be used: {problem}")
    _say("Falling back to the built-in demo pair (built once, then cached).")
    directory = defaults.demo_models_dir()
    defaults.build_demo_pair(vllm_python, directory)
    notice = defaults.DEMO_NOTICE.format(reason=problem)
    return defaults.ModelChoice(defaults.demo_models(directory), notice)


def _demo_models(args: argparse.Namespace) -> int:
    from app.generation import defaults

    settings = load_settings()
    directory = args.dir or defaults.demo_models_dir()
    defaults.build_demo_pair(_vllm_python(settings), directory, force=args.force)
    _say(f"demo family in {directory}: demo-base, demo-chat, demo-adapter (LoRA of demo-base)")
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
    from playground_tools import fake_vllm

    argv = ["--port", str(args.port), "--served-model-name", args.served_model_name]
    argv += ["--token-delay", str(args.token_delay)]
    fake_vllm.main(argv)
    return 0


def _adapters_add(args: argparse.Namespace) -> int:
    """Ask the running app's JSON API to load an adapter and add it as a model."""
    import httpx

    body = {"name": args.name, "path": args.path, "base": args.base, "kind": args.kind}
    url = args.url.rstrip("/") + "/api/v1/adapters"
    try:
        response = httpx.post(url, json=body, timeout=args.timeout)
    except httpx.HTTPError as exc:
        _say(f"playground: cannot reach the playground at {args.url}: {exc}")
        return 1
    if response.status_code != 201:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:300]
        _say(f"playground: adapter {args.name} not added (HTTP {response.status_code}): {detail}")
        return 1
    added = response.json()
    name, kind, parent = added["name"], added["kind"], added["parent"]
    print(f"added {name} ({kind}), a LoRA adapter of {parent}, served at {added['url']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="playground", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the web app")
    serve.add_argument(
        "--models",
        type=Path,
        help="models file (TOML); default: models.toml if present, else the default pair",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="app processes on the port (more than 1 needs PostgreSQL: DATABASE_URL)",
    )
    serve.set_defaults(handler=_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=_db_upgrade)

    demo = commands.add_parser("demo-models", help="build the offline demo family")
    demo.add_argument(
        "--dir",
        type=Path,
        help="where (default: $PLAYGROUND_DEMO_MODELS, else ~/.cache/playground-demo-models)",
    )
    demo.add_argument("--force", action="store_true", help="rebuild even if cached")
    demo.set_defaults(handler=_demo_models)

    adapters = commands.add_parser("adapters", help="LoRA adapters of a running playground")
    adapter_commands = adapters.add_subparsers(dest="adapters_command", required=True)
    add = adapter_commands.add_parser(
        "add", help="load a LoRA adapter on a model's vLLM server and add it as a model"
    )
    add.add_argument("name", help="the new model's name (vLLM serves the adapter under it)")
    add.add_argument("path", help="the adapter's directory on the server's machine, or a hub id")
    add.add_argument("--base", required=True, help="the configured model whose server serves it")
    add.add_argument("--kind", choices=["chat", "base"], default="chat")
    add.add_argument("--url", default="http://127.0.0.1:8000", help="the running playground")
    add.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the load")
    add.set_defaults(handler=_adapters_add)

    fake = commands.add_parser(
        "fake-server", help="a fake vLLM-compatible server for development and tests (no model)"
    )
    fake.add_argument("--port", type=int, default=8001)
    fake.add_argument("--served-model-name", default="fake-model")
    fake.add_argument("--token-delay", type=float, default=0.03)
    fake.set_defaults(handler=_fake_server)
    runs_cli.add_commands(commands)
    forgetting_cli.add_commands(commands)
    accounts_cli.add_commands(commands)
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
