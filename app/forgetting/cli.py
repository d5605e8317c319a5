"""`playground check`: run a set on an original and a tuned model, then gate on forgetting.

Exit status: 0 when the tuned model is not significantly worse, 1 when it is (the upper bound
of the 95% interval of tuned minus original accuracy is below 0), 2 when the check could not
be made (unreachable app, unknown set or model, no references, a run that did not finish).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlencode

from app.runs.cli import DEFAULT_URL, Refused, call, follow, start

WORSE, ERROR = 1, 2
SHOWN_IDS = 50


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _find_set(args: argparse.Namespace) -> dict[str, Any]:
    """The set named (or numbered) by --set, which must have items with references."""
    sets = call(args, "GET", "/prompt-sets")
    found = next((s for s in sets if s["name"] == args.set), None)
    if found is None and args.set.isdigit():
        found = next((s for s in sets if s["id"] == int(args.set)), None)
    if found is None:
        raise Refused(f"no prompt set {args.set!r}")
    items = call(args, "GET", f"/prompt-sets/{found['id']}/items")
    if not any(item.get("reference") for item in items):
        raise Refused(f"prompt set {found['name']!r} has no item with a reference to score")
    return dict(found)


def _new_run(args: argparse.Namespace) -> dict[str, Any]:
    if not (args.set and args.original and args.tuned):
        raise Refused("give --set, --original and --tuned (or --run ID)")
    prompt_set = _find_set(args)
    params: dict[str, Any] = {"temperature": args.temperature, "max_tokens": args.max_tokens}
    if args.seed is not None:
        params["seed"] = args.seed
    body = {
        "prompt_set": prompt_set["name"],
        "models": [args.original, args.tuned],
        "params": params,
        "base_format": args.base_format,
        "blind": False,
    }
    return start(args, body)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    counts = report["items"]
    print(
        f"run {report['run']} on {report['prompt_set']}: {counts['scored']} of {counts['total']} "
        f"items scored ({counts['without_reference']} without reference, "
        f"{counts['unanswered']} with a failed answer)"
    )
    for m in report["models"]:
        print(
            f"  {m['model']:<24} accuracy {_fmt(m['accuracy'])}  95% CI "
            f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]  ({m['correct']}/{m['scored']})"
        )
    pair, d = report["pair"], report["difference"]
    print(
        f"difference ({pair['tuned']} - {pair['original']}): {d['estimate']:+.3f}  "
        f"95% CI [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
    )
    for name in ("forgot", "learned"):
        keys = [c["item"] for c in report[name]]
        more = f" (+{len(keys) - SHOWN_IDS} more)" if len(keys) > SHOWN_IDS else ""
        print(f"{name} {len(keys)}: {', '.join(keys[:SHOWN_IDS])}{more}")
    if d["significantly_worse"]:
        verdict = f"{pair['tuned']} is significantly worse than {pair['original']}"
    elif d["significantly_better"]:
        verdict = f"{pair['tuned']} is significantly better than {pair['original']}"
    else:
        verdict = f"no significant difference between {pair['tuned']} and {pair['original']}"
    print(f"verdict: {verdict}")
    query = urlencode({"original": pair["original"], "tuned": pair["tuned"]})
    print(f"report: {args.url.rstrip('/')}/runs/{report['run']}/report?{query}")


def check(args: argparse.Namespace) -> int:
    """Run (or take) a run, fetch its report, print it, and gate on the difference."""
    run = call(args, "GET", f"/runs/{args.run}") if args.run else _new_run(args)
    run = follow(args, run)
    if run["status"] != "done":
        raise Refused(f"run {run['id']} is {run['status']}, not done: nothing to check")
    query: dict[str, Any] = {"seed": args.bootstrap_seed}
    if args.original or args.tuned:
        query |= {"original": args.original or "", "tuned": args.tuned or ""}
    report = call(args, "GET", f"/runs/{run['id']}/report?{urlencode(query)}")
    if report["pair"] is None:
        raise Refused(f"run {run['id']} has no adapter and its base: give --original and --tuned")
    if report["difference"] is None:
        counts = report["items"]
        raise Refused(
            f"no item of run {run['id']} could be scored ({counts['without_reference']} without "
            f"reference, {counts['unanswered']} with a failed answer)"
        )
    _print_report(args, report)
    return WORSE if report["difference"]["significantly_worse"] else 0


def _guarded(args: argparse.Namespace) -> int:
    try:
        return check(args)
    except Refused as exc:
        _say(f"playground: {exc}")
        return ERROR
    except KeyboardInterrupt:
        _say("\nstopped; a started run goes on in the playground")
        return ERROR


def add_commands(commands: Any) -> None:
    """Add `check` to the CLI's subcommands."""
    parser = commands.add_parser(
        "check",
        help="the forgetting check: exit 1 when the tuned model is significantly worse",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--set", help="the prompt set (name or id); its items need references")
    parser.add_argument("--original", help="the model before fine-tuning")
    parser.add_argument("--tuned", help="the fine-tuned model")
    parser.add_argument("--run", type=int, help="check this existing run instead of starting one")
    parser.add_argument("--temperature", type=float, default=0.0, help="default 0 (greedy)")
    parser.add_argument("--max-tokens", dest="max_tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, help="the run's sampling seed")
    parser.add_argument("--bootstrap-seed", dest="bootstrap_seed", type=int, default=0)
    parser.add_argument("--base-format", default="raw", choices=["raw", "transcript", "urial"])
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    parser.add_argument("--url", default=DEFAULT_URL, help="the running playground")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.set_defaults(handler=_guarded)
