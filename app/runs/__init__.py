"""Prompt sets and batch runs: import sets, run them on several models, read the results."""
