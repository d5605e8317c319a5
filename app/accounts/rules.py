"""Who may call each route in team mode: ONE table, enforced app-wide by accounts.guard.

Add a route = add one line here, `("METHOD", "/path/{template}"): ACCESS,` with the path
exactly as FastAPI declares it (prefix included). A route without a line is refused (403) in
team mode, and tests/accounts/test_rules.py fails until it has one.

PUBLIC    anyone, signed in or not
RATER     any signed-in account (raters and admins)
OWNER     signed in, and the conversation the path names (by conversation_id, turn_id or
          generation_id) is the account's own; admins may act on any conversation
ADMIN     admins only
`limited` adds the per-account limits (comparisons per minute, tokens per day): 429 past them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Access(StrEnum):
    """Who a route is open to."""

    PUBLIC = "public"
    RATER = "rater"
    OWNER = "owner"
    ADMIN = "admin"


@dataclass(frozen=True)
class Rule:
    """A route's access, and whether it starts generations (and so counts against limits)."""

    access: Access
    limited: bool = False


PUBLIC = Rule(Access.PUBLIC)
RATER = Rule(Access.RATER)
OWNER = Rule(Access.OWNER)
ADMIN = Rule(Access.ADMIN)
RATER_LIMITED = Rule(Access.RATER, limited=True)
OWNER_LIMITED = Rule(Access.OWNER, limited=True)

RULES: dict[tuple[str, str], Rule] = {
    # Open: probes, sign-in, invite links, the API's description.
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/invite/{token}"): PUBLIC,
    ("POST", "/invite/{token}"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # One's own account: sign-out, API tokens.
    ("POST", "/logout"): RATER,
    ("GET", "/account"): RATER,
    ("POST", "/account/tokens"): RATER,
    ("POST", "/account/tokens/{token_id}/revoke"): RATER,
    ("GET", "/api/v1/me"): RATER,
    # Comparisons: anyone signed in prompts, reads and judges; only the owner (or an admin)
    # follows up, stops, regenerates or continues.
    ("GET", "/"): RATER,
    ("GET", "/history"): RATER,
    ("POST", "/c"): RATER_LIMITED,
    ("GET", "/c/{conversation_id}"): RATER,
    ("POST", "/c/{conversation_id}/turns"): OWNER_LIMITED,
    ("POST", "/turns/{turn_id}/stop"): OWNER,
    ("POST", "/turns/{turn_id}/regenerate"): OWNER_LIMITED,
    ("POST", "/turns/{turn_id}/vote"): RATER,
    ("GET", "/turns/{turn_id}/events"): RATER,
    ("POST", "/api/v1/comparisons"): RATER_LIMITED,
    ("GET", "/api/v1/comparisons/{conversation_id}"): RATER,
    ("POST", "/api/v1/comparisons/{conversation_id}/turns"): OWNER_LIMITED,
    ("POST", "/api/v1/comparisons/{conversation_id}/votes"): RATER,
    # The token lens: reading and analysing answers is open; continuing one is the owner's.
    ("GET", "/generations/{generation_id}/tokens"): RATER,
    # Analysing stores (and replaces) the answer's analysis, which everyone sees and the
    # exports carry, and costs a scoring request: the owner's (or an admin's) to make.
    ("POST", "/generations/{generation_id}/token-shift"): OWNER,
    ("POST", "/generations/{generation_id}/rendered-prompt"): RATER,
    ("POST", "/generations/{generation_id}/prefix-continuations"): OWNER_LIMITED,
    ("GET", "/api/v1/generations/{generation_id}"): RATER,
    ("GET", "/api/v1/generations/{generation_id}/tokens"): RATER,
    ("GET", "/api/v1/generations/{generation_id}/token-shift"): RATER,
    ("POST", "/api/v1/generations/{generation_id}/token-shift"): OWNER,
    ("GET", "/api/v1/generations/{generation_id}/rendered-prompt"): RATER,
    ("POST", "/api/v1/generations/{generation_id}/prefix-continuations"): OWNER_LIMITED,
    # Models: everyone sees them; admins add adapters.
    ("GET", "/models"): RATER,
    ("GET", "/api/v1/models"): RATER,
    ("POST", "/models/adapters"): ADMIN,
    ("POST", "/api/v1/adapters"): ADMIN,
    # Prompt sets and batch runs: admins.
    ("GET", "/prompt-sets"): ADMIN,
    ("POST", "/prompt-sets"): ADMIN,
    ("GET", "/prompt-sets/{set_id}"): ADMIN,
    ("GET", "/runs"): ADMIN,
    ("POST", "/runs"): ADMIN,
    ("GET", "/runs/{run_id}"): ADMIN,
    ("GET", "/runs/{run_id}/progress"): ADMIN,
    ("POST", "/runs/{run_id}/{action}"): ADMIN,
    ("GET", "/api/v1/prompt-sets"): ADMIN,
    ("POST", "/api/v1/prompt-sets"): ADMIN,
    ("GET", "/api/v1/prompt-sets/{set_id}/items"): ADMIN,
    ("GET", "/api/v1/runs"): ADMIN,
    ("POST", "/api/v1/runs"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}"): ADMIN,
    ("POST", "/api/v1/runs/{run_id}/pause"): ADMIN,
    ("POST", "/api/v1/runs/{run_id}/resume"): ADMIN,
    ("POST", "/api/v1/runs/{run_id}/cancel"): ADMIN,
    ("POST", "/api/v1/runs/{run_id}/retry"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/results.csv"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/results.jsonl"): ADMIN,
    # The annotation queue: admins open a run for rating; raters work through it.
    ("POST", "/runs/{run_id}/queue/settings"): ADMIN,
    ("GET", "/runs/{run_id}/queue"): RATER,
    ("POST", "/runs/{run_id}/queue/rater"): RATER,
    ("POST", "/runs/{run_id}/queue/items/{run_item_id}"): RATER,
    ("POST", "/runs/{run_id}/queue/items/{run_item_id}/skip"): RATER,
    ("POST", "/api/v1/runs/{run_id}/task"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/task"): RATER,
    ("GET", "/api/v1/runs/{run_id}/task/next"): RATER,
    ("POST", "/api/v1/runs/{run_id}/task/items/{run_item_id}/judgement"): RATER,
    ("POST", "/api/v1/runs/{run_id}/task/items/{run_item_id}/skip"): RATER,
    # The forgetting check's report on a run.
    ("GET", "/runs/{run_id}/report"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/report"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/report.csv"): ADMIN,
    # Token shift over a whole run.
    ("GET", "/runs/{run_id}/token-shift"): ADMIN,
    ("GET", "/runs/{run_id}/token-shift/progress"): ADMIN,
    ("POST", "/runs/{run_id}/token-shift/start"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/token-shift"): ADMIN,
    ("POST", "/api/v1/runs/{run_id}/token-shift"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/token-shift.csv"): ADMIN,
    ("GET", "/api/v1/runs/{run_id}/token-shift.jsonl"): ADMIN,
    # Raters' statistics and agreement: everyone's judgements.
    ("GET", "/raters"): ADMIN,
    ("GET", "/api/v1/raters"): ADMIN,
    # Everyone's judgements: the leaderboard (it filters by rater) and the exports.
    ("GET", "/leaderboard"): ADMIN,
    ("GET", "/api/v1/leaderboard"): ADMIN,
    ("GET", "/api/v1/exports/ratings.csv"): ADMIN,
    ("GET", "/api/v1/exports/judgements.jsonl"): ADMIN,
    ("GET", "/api/v1/exports/token-shift.jsonl"): ADMIN,
    ("GET", "/api/v1/exports/dpo.jsonl"): ADMIN,
    ("GET", "/api/v1/exports/dpo.parquet"): ADMIN,
    ("GET", "/api/v1/exports/kto.jsonl"): ADMIN,
    ("GET", "/api/v1/exports/kto.parquet"): ADMIN,
    ("GET", "/api/v1/exports/reward.jsonl"): ADMIN,
    ("GET", "/api/v1/exports/reward.parquet"): ADMIN,
    # Accounts: admins invite, list, change roles, disable, revoke tokens.
    ("GET", "/admin/accounts"): ADMIN,
    ("POST", "/admin/invites"): ADMIN,
    ("POST", "/admin/accounts/{account_id}/role"): ADMIN,
    ("POST", "/admin/accounts/{account_id}/disabled"): ADMIN,
    ("POST", "/admin/accounts/{account_id}/tokens/revoke"): ADMIN,
}


def rule_for(method: str, path: str) -> Rule | None:
    """The rule of a route (HEAD as GET), or None when the table has none."""
    return RULES.get(("GET" if method == "HEAD" else method, path))
