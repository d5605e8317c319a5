"""Token shift over a whole run: every chat and adapter answer scored under a base model."""
