"""Test and demo tooling: the fake vLLM server, tiny-model builders, the demo trainer."""
