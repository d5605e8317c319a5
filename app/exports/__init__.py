"""Exports of rated pairs for reuse (reward models, DPO, analysis)."""
