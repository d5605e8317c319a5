"""DPO, KTO and reward exports: TRL's columns, loaded back through `datasets` as they are."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from fastapi import FastAPI

from app.exports.judged import CHUNK_ROWS
from tests.leaderboard.factory import Vote, insert

PROVENANCE = ["judgement_id", "rater", "prompt_set"]
PAIR_PROVENANCE = [*PROVENANCE, "models", "seed"]
COLUMNS = {
    "dpo": ["prompt", "chosen", "rejected", *PAIR_PROVENANCE],
    "reward": ["chosen", "rejected", *PAIR_PROVENANCE],
    "kto": ["prompt", "completion", "label", *PROVENANCE, "model", "seed"],
}


async def jsonl(client: httpx.AsyncClient, name: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/exports/{name}.jsonl", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


async def load(
    client: httpx.AsyncClient, tmp_path: Path, name: str, extension: str, **params: str
) -> Any:
    """Download an export to a file and load it with datasets, as a user would."""
    response = await client.get(f"/api/v1/exports/{name}.{extension}", params=params)
    assert response.status_code == 200, response.text
    path = tmp_path / f"{name}-{params.get('form', 'standard')}.{extension}"
    path.write_bytes(response.content)
    builder = "json" if extension == "jsonl" else "parquet"
    return load_dataset(builder, data_files=str(path), split="train", cache_dir=str(tmp_path))


async def test_a_two_way_vote_is_one_dpo_pair_with_provenance(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await insert(app, [Vote(["x", "y"], [2, 1], rater="ann", prompt="Why?", seed=11)])
    [record] = await jsonl(client, "dpo")
    assert record == {
        "prompt": "Why?",
        "chosen": "answer y 0",
        "rejected": "answer x 0",
        "judgement_id": 1,
        "rater": "ann",
        "prompt_set": None,
        "models": {"chosen": "y", "rejected": "x"},
        "seed": {"chosen": 11, "rejected": 11},
    }
    [reward] = await jsonl(client, "reward")
    assert (reward["chosen"], reward["rejected"]) == (
        "User: Why?\n\nAssistant: answer y 0",
        "User: Why?\n\nAssistant: answer x 0",
    )
    kto = await jsonl(client, "kto")
    assert [(r["completion"], r["label"], r["model"]) for r in kto] == [
        ("answer x 0", False, "x"),
        ("answer y 0", True, "y"),
    ]


async def test_multi_turn_history_in_both_forms(client: httpx.AsyncClient, app: FastAPI) -> None:
    history = [("Hi", ["hello from x", "hello from y"])]
    await insert(
        app, [Vote(["x", "y"], [1, 2], system="Be brief.", history=history, prompt="2+2?")]
    )
    [conversational] = await jsonl(client, "dpo", form="conversational")
    assert conversational["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "hello from x"},
        {"role": "user", "content": "2+2?"},
    ]
    assert conversational["chosen"] == [{"role": "assistant", "content": "answer x 0"}]
    assert conversational["rejected"] == [{"role": "assistant", "content": "answer y 0"}]
    [standard] = await jsonl(client, "dpo")
    assert standard["prompt"] == (
        "System: Be brief.\n\nUser: Hi\n\nAssistant: hello from x\n\nUser: 2+2?\n\nAssistant:"
    )
    [reward] = await jsonl(client, "reward", form="conversational")
    # Each side of a reward pair carries its own column's history.
    assert reward["rejected"][2] == {"role": "assistant", "content": "hello from y"}
    assert reward["rejected"][-1] == {"role": "assistant", "content": "answer y 0"}
    kto = await jsonl(client, "kto", form="conversational")
    assert [r["prompt"][2]["content"] for r in kto] == ["hello from x", "hello from y"]


async def test_standard_prompt_plus_answer_is_the_reward_transcript(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    # TRL trains on prompt + completion joined as they are: after a transcript's "Assistant:"
    # the answer must bring the space every earlier "Assistant: ..." block has.
    history = [("Hi", ["hello x", "hello y"])]
    await insert(
        app,
        [
            Vote(["x", "y"], [2, 1], history=history, prompt="2+2?"),
            Vote(["x", "y"], [2, 1], system="Be brief.", prompt="3+3?"),
            Vote(["x", "y"], [2, 1], prompt="Why?"),
        ],
    )
    dpo, reward = await jsonl(client, "dpo"), await jsonl(client, "reward")
    for pair, whole in zip(dpo[:2], reward[:2], strict=True):
        assert pair["prompt"].endswith("\n\nAssistant:")
        assert pair["prompt"] + pair["chosen"] == whole["chosen"]
    assert dpo[0]["chosen"] == " answer y 0"
    assert dpo[0]["rejected"] == " answer x 0"
    # A first turn without a system prompt: the prompt as typed and the answer as generated.
    assert (dpo[2]["prompt"], dpo[2]["chosen"]) == ("Why?", "answer y 2")
    kto = await jsonl(client, "kto")
    assert [r["completion"] for r in kto] == [
        " answer x 0",
        " answer y 0",
        " answer x 1",
        " answer y 1",
        "answer x 2",
        "answer y 2",
    ]
    conversational = await jsonl(client, "dpo", form="conversational")
    assert conversational[0]["chosen"] == [{"role": "assistant", "content": "answer y 0"}]


async def test_rankings_ties_and_both_bad(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(
        app,
        [
            Vote(["a", "b", "c"], [1, 2, 2]),
            Vote(["x", "y"], [1, 1]),
            Vote(["x", "y"], [None, None]),
        ],
    )
    dpo = await jsonl(client, "dpo")
    assert [(r["models"]["chosen"], r["models"]["rejected"]) for r in dpo] == [
        ("a", "b"),
        ("a", "c"),
    ]
    assert len(await jsonl(client, "reward", ties="kto_negative")) == 2
    kto = await jsonl(client, "kto")
    assert [(r["model"], r["label"]) for r in kto] == [("a", True), ("b", False), ("c", False)]
    negatives = await jsonl(client, "kto", ties="kto_negative")
    assert [(r["judgement_id"], r["label"]) for r in negatives[3:]] == [
        (2, False),
        (2, False),
        (3, False),
        (3, False),
    ]
    response = await client.get("/api/v1/exports/kto.jsonl", params={"ties": "keep"})
    assert response.status_code == 422


async def test_filters_select_the_judgements(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(
        app,
        [Vote(["x", "y"], [1, 2], blind=False), Vote(["x", "y"], [1, 2], rater="bo")],
    )
    assert len(await jsonl(client, "dpo")) == 2
    assert [r["judgement_id"] for r in await jsonl(client, "dpo", blind="only")] == [2]
    assert [r["rater"] for r in await jsonl(client, "dpo", rater="bo")] == ["bo"]
    assert await jsonl(client, "dpo", since="2030-01-01T00:00:00Z") == []


@pytest.mark.parametrize("extension", ["jsonl", "parquet"])
@pytest.mark.parametrize("form", ["standard", "conversational"])
async def test_datasets_loads_the_columns_trl_expects(
    client: httpx.AsyncClient, app: FastAPI, tmp_path: Path, extension: str, form: str
) -> None:
    history = [("Hi", ["hello x", "hello y"])]
    await insert(app, [Vote(["x", "y"], [2, 1], history=history), Vote(["x", "y"], [1, 2])])
    for name, columns in COLUMNS.items():
        dataset = await load(client, tmp_path, name, extension, form=form)
        assert dataset.column_names == columns
        row = dataset[0]
        if form == "conversational":
            text_column = "completion" if name == "kto" else "chosen"
            assert set(row[text_column][0]) == {"role", "content"}
            if name != "reward":
                assert [m["role"] for m in row["prompt"]] == ["user", "assistant", "user"]
        else:
            assert isinstance(row["chosen" if name != "kto" else "completion"], str)
        if name == "kto":
            assert dataset.features["label"].dtype == "bool"
            assert dataset["label"] == [False, True, True, False]
        else:
            assert len(dataset) == 2
            assert row["models"] == {"chosen": "y", "rejected": "x"}


async def test_more_judgements_than_one_chunk_stream_in_row_groups(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    votes = CHUNK_ROWS // 2 + 300  # two rows per judgement: a little over one chunk of rows
    await insert(app, [Vote(["x", "y"], [1, 2], prompt=f"p{i}") for i in range(votes)])
    records = await jsonl(client, "dpo")
    assert [r["prompt"] for r in records] == [f"p{i}" for i in range(votes)]
    response = await client.get("/api/v1/exports/kto.parquet")
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    parquet = pq.ParquetFile(io.BytesIO(response.content))
    assert parquet.metadata.num_rows == 2 * votes
    assert parquet.num_row_groups >= 2
