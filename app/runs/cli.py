"""`playground prompts ...` and `playground run`: talk to a running playground's JSON API."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
BAR = 30


class Refused(Exception):
    """The command cannot go on; the message says why."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A refusal becomes one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except Refused as exc:
            _say(f"playground: {exc}")
            return 1

    return run


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One API call; a refusal or an unreachable app raises Refused with the reason."""
    import httpx

    url = args.url.rstrip("/") + "/api/v1" + path
    try:
        response = httpx.request(method, url, json=body, timeout=args.timeout)
    except httpx.HTTPError as exc:
        raise Refused(f"cannot reach the playground at {args.url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text[:300]
        raise Refused(f"refused (HTTP {response.status_code}): {detail}")
    return response.json()


def _import(args: argparse.Namespace) -> int:
    """Import a file, or a local Hugging Face dataset, as a new prompt set."""
    body: dict[str, Any] = {"name": args.name}
    if args.dataset:
        from app.errors import InvalidInput
        from app.runs.importers import dataset_rows, validate_rows

        try:
            rows = dataset_rows(args.dataset, args.split, args.column)
            items = validate_rows(rows, args.max_items, "row")
        except InvalidInput as exc:
            raise Refused(f"{exc.message}") from exc
        body["items"] = [item.model_dump(exclude_none=True) for item in items]
        body["source"] = f"dataset: {args.dataset} [{args.split}].{args.column}"[:300]
    elif args.file:
        path = Path(args.file)
        try:
            body["content"] = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise Refused(f"cannot read {path}: {exc}") from exc
        body["format"] = "csv" if path.suffix.lower() == ".csv" else "jsonl"
        body["source"] = f"file: {path.name}"[:300]
    else:
        raise Refused("give a FILE or --dataset PATH")
    created = call(args, "POST", "/prompt-sets", body)
    print(f"imported {created['items']} items as prompt set {created['name']} (id {created['id']})")
    return 0


def _list(args: argparse.Namespace) -> int:
    """Print every prompt set."""
    for entry in call(args, "GET", "/prompt-sets"):
        print(f"{entry['id']:>5}  {entry['items']:>6} items  {entry['name']}")
    return 0


def _bar(run: dict[str, Any]) -> str:
    total = max(int(run["total"]), 1)
    finished = int(run["done"]) + int(run["failed"])
    filled = BAR * finished // total
    rate = run.get("tokens_per_second")
    left = run.get("seconds_left")
    extra = (f" {rate:.0f} tok/s" if rate else "") + (f" ~{left:.0f}s left" if left else "")
    return (
        f"\r[{'#' * filled}{'.' * (BAR - filled)}] {finished}/{run['total']} "
        f"({run['failed']} failed) {run['status']}{extra}   "
    )


def _run(args: argparse.Namespace) -> int:
    """Start a run of a set and follow it with a progress bar on stderr."""
    params: dict[str, Any] = {}
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    body = {
        "prompt_set": args.set,
        "models": args.models,
        "params": params,
        "base_format": args.base_format,
        "blind": args.blind,
    }
    run = start(args, body)
    if args.no_wait:
        print(run["id"])
        return 0
    try:
        run = follow(args, run)
    except KeyboardInterrupt:
        _say(f"\nstopped watching; run {run['id']} goes on in the playground")
        return 130
    print(f"{args.url.rstrip('/')}/runs/{run['id']}")
    return 0 if run["status"] == "done" and not run["failed"] else 1


def start(args: argparse.Namespace, body: dict[str, Any]) -> dict[str, Any]:
    """Start a run (POST /runs) and say so on stderr."""
    run: dict[str, Any] = call(args, "POST", "/runs", body)
    _say(f"run {run['id']}: {run['total']} answers ({', '.join(run['models'])})")
    return run


def follow(args: argparse.Namespace, run: dict[str, Any]) -> dict[str, Any]:
    """Draw a progress bar on stderr until the run stops; list its failures; the final run."""
    while run["status"] in ("queued", "running"):
        sys.stderr.write(_bar(run))
        sys.stderr.flush()
        time.sleep(args.poll)
        run = call(args, "GET", f"/runs/{run['id']}")
    sys.stderr.write(_bar(run) + "\n")
    for failure in run.get("failures", [])[:20]:
        _say(f"  failed: {failure['item']} on {failure['model']}: {failure['error']}")
    return run


def add_commands(commands: Any) -> None:
    """Add `prompts` and `run` to the CLI's subcommands."""
    prompts = commands.add_parser("prompts", help="prompt sets of a running playground")
    sub = prompts.add_subparsers(dest="prompts_command", required=True)
    imp = sub.add_parser("import", help="import a JSONL/CSV file or a local HF dataset")
    imp.add_argument("file", nargs="?", help="a .jsonl or .csv file")
    imp.add_argument("--name", required=True, help="the new set's name")
    imp.add_argument("--dataset", help="a dataset saved with save_to_disk, or a local dataset dir")
    imp.add_argument("--split", default="train")
    imp.add_argument("--column", default="prompt", help="the column holding the prompt")
    imp.add_argument("--max-items", type=int, default=5000)
    imp.set_defaults(handler=_guarded(_import))
    lst = sub.add_parser("list", help="list the prompt sets")
    lst.set_defaults(handler=_guarded(_list))
    run = commands.add_parser("run", help="run a prompt set on 2-4 models and follow it")
    run.add_argument("set", help="the set's name or id")
    run.add_argument("--models", nargs="+", required=True)
    run.add_argument("--temperature", type=float)
    run.add_argument("--top-p", dest="top_p", type=float)
    run.add_argument("--max-tokens", dest="max_tokens", type=int)
    run.add_argument("--seed", type=int)
    run.add_argument("--base-format", default="raw", choices=["raw", "transcript", "urial"])
    run.add_argument("--blind", action="store_true")
    run.add_argument("--no-wait", action="store_true", help="print the run id and return")
    run.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    run.set_defaults(handler=_guarded(_run))
    for parser in (imp, lst, run):
        parser.add_argument("--url", default=DEFAULT_URL, help="the running playground")
        parser.add_argument("--timeout", type=float, default=60.0)
