"""Make legacy.db and ratings.csv: a database filled through the two-model playground's API.

Run from a checkout of the last two-model commit (05e61fe, schema revision 0002), e.g.

    git worktree add --detach /tmp/old 05e61fe
    cd /tmp/old && .venv/bin/python /path/to/tests/data/legacy_0002/make.py OUT_DIR

It drives that version's JSON API against its fake model servers: conversations in every base
format with a system prompt, every kind of vote, scores and comments, a vote changed by its
rater, a vote before a regeneration, a follow-up turn, a token-shift analysis, a prefix
continuation and awkward text. tests/test_migration_n_way.py upgrades a copy of the database
and checks that the export and the pages come out as this version made them.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
from app.engines.fake_vllm import FakeConfig, FakeServer
from asgi_lifespan import LifespanManager

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.main import create_app

AWKWARD = 'He said "hi", then\nleft; =SUM(A1) +1 -2 @x, tab\there, ünïcödé, 🙂'


async def fill(client: httpx.AsyncClient) -> None:
    """Drive the API the way a script or a rater would."""

    async def post(path: str, body: dict[str, object]) -> dict[str, object]:
        response = await client.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        data: dict[str, object] = response.json()
        return data

    first = await post(
        "/api/v1/comparisons",
        {"prompt": "What is the capital of France?", "system": "Be brief.",
         "base_format": "transcript", "params": {"seed": 7, "max_tokens": 12}},
    )  # fmt: skip
    cid = first["id"]
    await post(f"/api/v1/comparisons/{cid}/votes", {"winner": "b", "rater": "alice",
               "score_a": 2, "score_b": 5, "comment": "B answers"})  # fmt: skip
    await post(f"/api/v1/comparisons/{cid}/votes", {"winner": "tie", "rater": "bob"})
    # alice changes her mind
    await post(f"/api/v1/comparisons/{cid}/votes", {"winner": "a", "rater": "alice",
               "score_a": 4, "comment": AWKWARD})  # fmt: skip
    turn = first["turns"][0]  # type: ignore[index]
    chat_id = turn["b"]["id"]
    await post(f"/api/v1/generations/{chat_id}/token-shift", {})
    await post(f"/api/v1/generations/{chat_id}/prefix-continuations", {"k": 2})
    await post(f"/api/v1/comparisons/{cid}/turns", {"prompt": "And of Italy? " + AWKWARD,
               "params": {"seed": 8, "max_tokens": 10, "stop": ["\n\n"]}})  # fmt: skip
    await post(f"/api/v1/comparisons/{cid}/votes", {"winner": "both_bad", "rater": "carol",
               "score_a": 1, "score_b": 1})  # fmt: skip

    second = await post(
        "/api/v1/comparisons",
        {"prompt": "=1+1 " + AWKWARD, "base_format": "raw", "models": ["chat", "base"],
         "params": {"temperature": 0.3, "top_k": 20, "seed": 1}},
    )  # fmt: skip
    await post(f"/api/v1/comparisons/{second['id']}/votes", {"winner": "b", "rater": "dave"})

    third = await post(
        "/api/v1/comparisons",
        {"prompt": "Say something kind.", "base_format": "urial", "params": {"seed": 3}},
    )
    await post(f"/api/v1/comparisons/{third['id']}/votes", {"winner": "a", "rater": "erin"})
    # A vote, then a regeneration of A: the vote keeps the answers it judged.
    page = await client.get(f"/c/{third['id']}")
    token = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', page.text)
    assert token is not None
    turn_id = third["turns"][0]["id"]  # type: ignore[index]
    regenerated = await client.post(
        f"/turns/{turn_id}/regenerate",
        data={"side": "a"},
        headers={"X-CSRF-Token": token.group(1), "HX-Request": "true"},
    )
    assert regenerated.status_code == 200, regenerated.text
    for _ in range(200):
        state = (await client.get(f"/api/v1/comparisons/{third['id']}")).json()
        if state["turns"][0]["a"]["status"] == "done":
            break
        await asyncio.sleep(0.05)
    await post(f"/api/v1/comparisons/{third['id']}/votes", {"winner": "b", "rater": "frank"})

    await post("/api/v1/comparisons", {"prompt": "No votes here.", "params": {"seed": 4}})


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    database = out / "legacy.db"
    database.unlink(missing_ok=True)
    with (
        FakeServer(FakeConfig(served_model_name="tiny-base", answer_words=6)) as base,
        FakeServer(FakeConfig(served_model_name="tiny-chat", answer_words=5)) as chat,
    ):
        models = ModelsFile(
            models=[
                ModelConfig(name="base", kind=ModelKind.BASE, url=base.base_url,
                            model="tiny-base", revision="rev-1"),
                ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat.base_url,
                            model="tiny-chat"),
            ]
        )  # fmt: skip
        settings = Settings(DATABASE_URL=f"sqlite:///{database}", data_dir=out,
                            secret_key="x" * 40)  # fmt: skip
        app = create_app(settings, models)
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                await fill(c)
                csv = await c.get("/api/v1/exports/ratings.csv")
                assert csv.status_code == 200
                (out / "ratings.csv").write_bytes(csv.content)
                listing = await c.get("/history")
                (out / "history.html").write_bytes(listing.content)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
