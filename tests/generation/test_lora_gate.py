"""The LoRA gate: one served name at a time on servers that mix base and adapter batches."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.generation.contract import GenerationRequest
from app.generation.lora_gate import IdentityGate, LoraGates
from app.main import create_app, needs_lora_gate


async def test_same_identity_shares_and_another_waits() -> None:
    gate = IdentityGate()
    events: list[str] = []
    release_first = asyncio.Event()

    async def run(name: str, identity: str, hold: asyncio.Event | None) -> None:
        async with gate.hold(identity):
            events.append(f"{name} in")
            if hold is not None:
                await hold.wait()
            events.append(f"{name} out")

    first = asyncio.create_task(run("base-1", "base", release_first))
    await asyncio.sleep(0)
    other = asyncio.create_task(run("lora", "lora", None))
    same = asyncio.create_task(run("base-2", "base", None))
    await asyncio.sleep(0.01)
    # base-2 joined base-1; the adapter request waits for every base request to end.
    assert events == ["base-1 in", "base-2 in", "base-2 out"]
    release_first.set()
    await asyncio.gather(first, other, same)
    assert events[3:] == ["base-1 out", "lora in", "lora out"]


async def test_a_cancelled_holder_releases_the_gate() -> None:
    gate = IdentityGate()
    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with gate.hold("base"):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold_forever())
    await entered.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(1), gate.hold("lora"):
        pass


async def test_requests_to_servers_without_a_gate_pass_straight_through() -> None:
    gates = LoraGates(lambda request: False)
    model = ModelConfig(name="m", kind=ModelKind.BASE, url="http://x/v1", model="m")
    request = GenerationRequest(model, {}, prompt_text="p")
    async with gates.hold(request), gates.hold(request):
        pass


def models_with_adapter(url: str) -> ModelsFile:
    return ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, url=url, model="base"),
            ModelConfig(name="lora", kind=ModelKind.CHAT, adapter_of="base", source="/a"),
            ModelConfig(name="other", kind=ModelKind.CHAT, url="http://other/v1", model="o"),
        ]
    )


class CpuServers:
    """Stands in for LocalServers: which servers were launched without a GPU."""

    def __init__(self, urls: set[str]) -> None:
        self.urls = urls

    def cpu_server_urls(self) -> set[str]:
        return self.urls


def test_the_policy_gates_only_servers_that_serve_adapters(settings: Settings) -> None:
    models = models_with_adapter("http://one/v1")
    base, other = models.get("base"), models.get("other")
    assert base is not None and other is not None
    cases = [
        ("always", None, (True, False)),
        ("never", CpuServers({"http://one/v1"}), (False, False)),
        ("auto", None, (False, False)),  # servers the playground did not launch
        ("auto", CpuServers(set()), (False, False)),  # launched on a GPU
        ("auto", CpuServers({"http://one/v1", "http://other/v1"}), (True, False)),
    ]
    for setting, local, expected in cases:
        app = create_app(settings.model_copy(update={"lora_isolation": setting}), models)
        app.state.playground = SimpleNamespace(
            settings=settings.model_copy(update={"lora_isolation": setting}),
            local_servers=local,
            models=models,
        )
        got = tuple(
            needs_lora_gate(app, GenerationRequest(m, {}, prompt_text="p")) for m in (base, other)
        )
        assert got == expected, (setting, local)
