"""Comparisons: a conversation of turns, each answered by two models side by side, and votes."""
