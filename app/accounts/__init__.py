"""Rater accounts (team mode): sign-in, roles, invites, API tokens, per-account limits."""
