"""The ratings CSV: documented columns, one row per vote, exact values, safe for spreadsheets."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from psycopg import sql
from sqlalchemy.engine import make_url

from app.comparisons.models import Conversation, Judgement, JudgementEntry, Participant, Turn
from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.exports.judged import CHUNK_ROWS
from app.exports.ratings import COLUMNS
from app.generation.records import Generation
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.conftest import csrf_headers, postgres_admin, postgres_server_url

# The columns as the export is documented (the spec), in order.
DOCUMENTED_COLUMNS = [
    "vote_id", "voted_at", "rater", "conversation_id", "turn", "system", "prompt", "history_json",
    "model_a", "kind_a", "model_b", "kind_b", "prompt_sent_a", "prompt_sent_b",
    "response_a", "response_b", "winner", "winner_model", "score_a", "score_b", "comment",
    "temperature", "top_p", "top_k", "max_tokens", "seed", "stop",
    "finish_reason_a", "finish_reason_b", "completion_tokens_a", "completion_tokens_b",
    "shifted_ratio_a", "shifted_ratio_b",
    "judgement_id", "slot_a", "slot_b", "position_a", "position_b", "blind", "n_models",
]  # fmt: skip
TEXT_COLUMNS = [
    "rater", "conversation_id", "system", "prompt", "model_a", "kind_a", "model_b", "kind_b",
    "response_a", "response_b", "winner", "winner_model", "comment",
    "finish_reason_a", "finish_reason_b", "slot_a", "slot_b", "blind",
]  # fmt: skip
NUMBER_COLUMNS = [
    "vote_id", "turn", "score_a", "score_b", "temperature", "top_p", "top_k", "max_tokens",
    "seed", "completion_tokens_a", "completion_tokens_b", "shifted_ratio_a", "shifted_ratio_b",
    "judgement_id", "position_a", "position_b", "n_models",
]  # fmt: skip
# Spreadsheets run cells starting with these as formulas (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_URL = "/api/v1/exports/ratings.csv"
TRICKY_PROMPT = 'He said, "hello, world"\r\nand left; 2nd line — café, 日本語 🙂\n\nend'
FORMULA_PROMPT = '=HYPERLINK("http://evil.example","click")'
FORMULA_OUTPUT = "=cmd|' /C calc'!A0"
TURN_ID = re.compile(r'<section class="turn" id="turn-(\d+)"')


def spreadsheet_safe(value: str) -> str:
    """What a text cell must hold: the value, with an apostrophe before a would-be formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


@dataclass
class Ratings:
    """Conversations made through the API, their votes, and the downloaded export."""

    servers: tuple[FakeServer, FakeServer]
    response: httpx.Response = field(default_factory=lambda: httpx.Response(500))
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    generations: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, str]]:
        """The export parsed with the csv module (RFC 4180), as dicts by header."""
        reader = csv.reader(io.StringIO(self.response.text, newline=""))
        header, *rows = list(reader)
        assert header == DOCUMENTED_COLUMNS
        assert all(len(row) == len(header) for row in rows)
        return [dict(zip(header, row, strict=True)) for row in rows]

    def votes(self) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """Every stored vote as (conversation, turn, vote)."""
        return [
            (conversation, turn, vote)
            for conversation in self.conversations.values()
            for turn in conversation["turns"]
            for vote in turn["votes"]
        ]

    def row_for(self, rater: str, conversation: str, turn: int = 1) -> dict[str, str]:
        """The exported row of one rater's vote on one turn."""
        cid = self.ids[conversation]
        matches = [
            r for r in self.rows
            if r["rater"] == spreadsheet_safe(rater) and r["conversation_id"] == cid
            and r["turn"] == str(turn)
        ]  # fmt: skip
        assert len(matches) == 1, matches
        return matches[0]


class Maker:
    """Drives the API (and the page route for regenerating) to build rated conversations."""

    def __init__(self, client: httpx.AsyncClient, ratings: Ratings) -> None:
        self.client = client
        self.ratings = ratings

    def remember(self, conversation: dict[str, Any]) -> dict[str, Any]:
        self.ratings.conversations[conversation["id"]] = conversation
        for turn in conversation["turns"]:
            for side in ("a", "b"):
                if turn[side] is not None:
                    self.ratings.generations[turn[side]["id"]] = turn[side]
        return conversation

    async def start(self, name: str, **body: Any) -> str:
        body.setdefault("params", {}).setdefault("max_tokens", 12)
        response = await self.client.post("/api/v1/comparisons", json=body)
        assert response.status_code == 201, response.text
        cid: str = self.remember(response.json())["id"]
        self.ratings.ids[name] = cid
        return cid

    async def follow_up(self, cid: str, prompt: str) -> None:
        response = await self.client.post(
            f"/api/v1/comparisons/{cid}/turns",
            json={"prompt": prompt, "params": {"max_tokens": 12}},
        )
        assert response.status_code == 201, response.text
        self.remember(response.json())

    async def vote(self, cid: str, **body: Any) -> None:
        response = await self.client.post(f"/api/v1/comparisons/{cid}/votes", json=body)
        assert response.status_code == 201, response.text

    async def regenerate_a(self, cid: str) -> None:
        """Regenerate column A of the latest turn the way the page does, and wait for it."""
        headers = await csrf_headers(self.client)
        page = await self.client.get(f"/c/{cid}")
        turn_id = TURN_ID.findall(page.text)[-1]
        response = await self.client.post(
            f"/turns/{turn_id}/regenerate", data={"side": "a"}, headers=headers
        )
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 10
        while True:
            conversation = await self.refresh(cid)
            if conversation["turns"][-1]["a"]["status"] == "done":
                return
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)

    async def analyse(self, cid: str, side: str) -> None:
        """Token-shift one side's current answer of the latest turn (it must be the chat one)."""
        generation = (await self.refresh(cid))["turns"][-1][side]
        response = await self.client.post(
            f"/api/v1/generations/{generation['id']}/token-shift", json={}
        )
        assert response.status_code == 201, response.text

    async def refresh(self, cid: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/comparisons/{cid}")
        assert response.status_code == 200
        return self.remember(response.json())


async def rate_conversations(client: httpx.AsyncClient, ratings: Ratings) -> None:
    """Several rated conversations covering every kind of vote and awkward text."""
    make = Maker(client, ratings)
    base_server, chat_server = ratings.servers

    multi = await make.start("multi", prompt="Name a river.")
    await make.analyse(multi, "b")
    await make.vote(multi, winner="a", rater="alice", score_a=5, score_b=3, comment="A is fluent")
    await make.follow_up(multi, "And a mountain?")
    await make.vote(multi, winner="tie", rater="alice")
    await make.vote(multi, winner="both_bad", rater="bob", score_a=1, score_b=1)

    tricky = await make.start(
        "tricky",
        prompt=TRICKY_PROMPT,
        system='Line one\nLine "two", with commas',
        base_format="transcript",
        params={"temperature": 0.3, "top_p": 0.9, "top_k": 40, "seed": 42, "stop": ["END", "\n\n"]},
    )
    await make.vote(tricky, winner="b", rater="carol", comment='multi\nline, "quoted" — ok')

    # Formula-looking cells everywhere: prompt, system, rater, comment and a model's output.
    chat_server.config.inject_text = FORMULA_OUTPUT
    formulas = await make.start(
        "formulas", prompt=FORMULA_PROMPT, system="+SUM(1,2)", models=["chat", "base"]
    )
    chat_server.config.inject_text = None
    await make.analyse(formulas, "a")
    await make.vote(formulas, winner="a", rater="@mallory", comment="-2 points, =bad")

    regenerated = await make.start("regenerated", prompt="Describe a bridge.")
    await make.vote(regenerated, winner="b", rater="dave", score_b=4)
    ratings.ids["judged_a"] = str(ratings.conversations[regenerated]["turns"][0]["a"]["id"])
    base_server.config.inject_text = "Regenerated:"
    await make.regenerate_a(regenerated)
    await make.vote(regenerated, winner="a", rater="erin")

    await make.start("unrated", prompt="Nobody votes on this.")
    for cid in list(ratings.conversations):
        await make.refresh(cid)
    ratings.response = await client.get(EXPORT_URL)
    assert ratings.response.status_code == 200


async def build_ratings(app: FastAPI, ratings: Ratings) -> Ratings:
    """Run the app in-process, rate conversations, download the export."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await rate_conversations(client, ratings)
    return ratings


@contextmanager
def module_database(data_dir: Path) -> Iterator[str]:
    """A database for this module: SQLite, or a new one on the PostgreSQL test server."""
    server = postgres_server_url()
    if server is None:
        yield f"sqlite:///{data_dir / 'ratings.db'}"
        return
    name = f"test_ratings_{uuid.uuid4().hex[:12]}"
    with postgres_admin(server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin(server) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def ratings(
    base_server: FakeServer, chat_server: FakeServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ratings]:
    """The rated conversations and their export, built once for this module's tests."""
    data_dir = tmp_path_factory.mktemp("ratings")
    models = ModelsFile(
        models=[
            ModelConfig(name=name, kind=kind, url=server.base_url, model=f"tiny-{name}")
            for name, kind, server in (
                ("base", ModelKind.BASE, base_server),
                ("chat", ModelKind.CHAT, chat_server),
            )
        ]
    )
    for server in (base_server, chat_server):
        server.config.answer_words = 6
    try:
        with module_database(data_dir) as url:
            settings = Settings(
                DATABASE_URL=url,
                data_dir=data_dir,
                secret_key="test-secret-" + "x" * 32,
                stream_flush_seconds=0.01,
            )
            app = create_app(settings, models)
            yield asyncio.run(build_ratings(app, Ratings(servers=(base_server, chat_server))))
    finally:
        base_server.reset()
        chat_server.reset()


def history_of(conversation: dict[str, Any], number: int) -> list[dict[str, str]]:
    """Earlier turns as each model saw them: the prompt and both current answers."""
    return [
        {"prompt": t["prompt"], "response_a": t["a"]["text"], "response_b": t["b"]["text"]}
        for t in conversation["turns"]
        if t["number"] < number
    ]


def assert_row_matches(
    row: dict[str, str],
    conversation: dict[str, Any],
    turn: dict[str, Any],
    vote: dict[str, Any],
    generations: dict[int, dict[str, Any]],
) -> None:
    """Every cell of a row holds what the API says about that vote."""
    gen_a = generations[vote["generation_a_id"]]
    gen_b = generations[vote["generation_b_id"]]
    params = turn["params"]
    winner_model = {"a": conversation["model_a"], "b": conversation["model_b"]}
    text = {
        "rater": vote["rater"], "conversation_id": conversation["id"],
        "system": conversation["system"] or "", "prompt": turn["prompt"],
        "model_a": conversation["model_a"], "kind_a": conversation["kind_a"],
        "model_b": conversation["model_b"], "kind_b": conversation["kind_b"],
        "response_a": gen_a["text"], "response_b": gen_b["text"], "winner": vote["winner"],
        "winner_model": winner_model.get(vote["winner"], ""), "comment": vote["comment"] or "",
        "finish_reason_a": gen_a["finish_reason"], "finish_reason_b": gen_b["finish_reason"],
        "slot_a": "a", "slot_b": "b", "blind": "true" if vote["blind"] else "false",
    }  # fmt: skip
    numbers = {
        "vote_id": vote["id"], "turn": turn["number"], "score_a": vote["score_a"],
        "score_b": vote["score_b"], "temperature": params["temperature"],
        "top_p": params["top_p"], "top_k": params["top_k"], "max_tokens": params["max_tokens"],
        "seed": params["seed"], "completion_tokens_a": gen_a["completion_tokens"],
        "completion_tokens_b": gen_b["completion_tokens"],
        "shifted_ratio_a": gen_a["shifted_ratio"], "shifted_ratio_b": gen_b["shifted_ratio"],
        "judgement_id": vote["id"], "position_a": vote["positions"]["a"],
        "position_b": vote["positions"]["b"], "n_models": len(vote["generation_ids"]),
    }  # fmt: skip
    assert set(text) == set(TEXT_COLUMNS) and set(numbers) == set(NUMBER_COLUMNS)
    for name, value in text.items():
        assert row[name] == spreadsheet_safe(value), name
    for name, number in numbers.items():
        assert (float(row[name]) if row[name] != "" else None) == number, name
    assert datetime.fromisoformat(row["voted_at"]) == datetime.fromisoformat(vote["updated_at"])
    assert json.loads(row["history_json"]) == history_of(conversation, turn["number"])
    assert json.loads(row["stop"]) == params["stop"]
    for side, generation in (("a", gen_a), ("b", gen_b)):
        cell = row[f"prompt_sent_{side}"]
        if generation["prompt_text"] is not None:
            assert cell == spreadsheet_safe(generation["prompt_text"])
        else:
            assert json.loads(cell) == generation["messages"]


# ---------------------------------------------------------------- tests


async def test_export_is_a_csv_attachment(ratings: Ratings) -> None:
    response = ratings.response
    assert response.headers["content-type"].split(";")[0] == "text/csv"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert re.search(r'filename="[^"/]+\.csv"', disposition)


async def test_header_is_the_documented_columns_and_rows_use_crlf(ratings: Ratings) -> None:
    assert COLUMNS == DOCUMENTED_COLUMNS
    first_line, _, rest = ratings.response.text.partition("\r\n")
    assert first_line == ",".join(DOCUMENTED_COLUMNS)
    assert rest.endswith("\r\n")


async def test_one_row_per_vote_with_the_values_the_api_reports(ratings: Ratings) -> None:
    rows = ratings.rows
    votes = ratings.votes()
    assert len(votes) == 7
    assert len(rows) == len(votes)
    assert sorted(int(r["vote_id"]) for r in rows) == sorted(v["id"] for _, _, v in votes)
    by_id = {int(r["vote_id"]): r for r in rows}
    for conversation, turn, vote in votes:
        assert_row_matches(by_id[vote["id"]], conversation, turn, vote, ratings.generations)
    assert ratings.ids["unrated"] not in {r["conversation_id"] for r in rows}
    assert {r["winner"] for r in rows} == {"a", "b", "tie", "both_bad"}


async def test_follow_up_row_carries_the_earlier_turn_in_history_json(ratings: Ratings) -> None:
    conversation = ratings.conversations[ratings.ids["multi"]]
    first = conversation["turns"][0]
    assert json.loads(ratings.row_for("alice", "multi", turn=1)["history_json"]) == []
    for rater in ("alice", "bob"):
        history = json.loads(ratings.row_for(rater, "multi", turn=2)["history_json"])
        assert history == [
            {
                "prompt": "Name a river.",
                "response_a": first["a"]["text"],
                "response_b": first["b"]["text"],
            }
        ]
    tie = ratings.row_for("alice", "multi", turn=2)
    assert (tie["winner"], tie["winner_model"], tie["score_a"]) == ("tie", "", "")
    both_bad = ratings.row_for("bob", "multi", turn=2)
    assert (both_bad["winner"], both_bad["winner_model"]) == ("both_bad", "")


async def test_awkward_text_survives_the_round_trip(ratings: Ratings) -> None:
    row = ratings.row_for("carol", "tricky")
    conversation = ratings.conversations[ratings.ids["tricky"]]
    assert row["prompt"] == TRICKY_PROMPT
    assert row["system"] == 'Line one\nLine "two", with commas'
    assert row["comment"] == 'multi\nline, "quoted" — ok'
    assert json.loads(row["stop"]) == ["END", "\n\n"]
    assert (row["seed"], row["top_k"], row["temperature"]) == ("42", "40", "0.3")
    assert row["winner_model"] == conversation["model_b"]
    # The base model got a transcript; the chat model got messages.
    assert row["prompt_sent_a"] == conversation["turns"][0]["a"]["prompt_text"]
    assert "User: " in row["prompt_sent_a"]
    messages = json.loads(row["prompt_sent_b"])
    assert messages[-1] == {"role": "user", "content": TRICKY_PROMPT}
    # Written as JSON with non-ASCII text as itself, whether the stored text escaped it or not.
    assert row["prompt_sent_b"] == json.dumps(messages, ensure_ascii=False)
    assert "café, 日本語 🙂" in row["prompt_sent_b"]
    plain = ratings.row_for("alice", "multi", turn=1)
    assert plain["prompt_sent_b"] == json.dumps(
        json.loads(plain["prompt_sent_b"]), ensure_ascii=False
    )


async def test_formula_cells_get_a_leading_apostrophe_and_nothing_else(ratings: Ratings) -> None:
    row = ratings.row_for("@mallory", "formulas")
    conversation = ratings.conversations[ratings.ids["formulas"]]
    answer_a = conversation["turns"][0]["a"]["text"]
    assert answer_a.startswith(FORMULA_OUTPUT)
    assert row["prompt"] == "'" + FORMULA_PROMPT
    assert row["system"] == "'+SUM(1,2)"
    assert row["rater"] == "'@mallory"
    assert row["comment"] == "'-2 points, =bad"
    assert row["response_a"] == "'" + answer_a
    # Model A here is the chat model: the winner is named by what was in column A.
    assert (row["model_a"], row["winner_model"]) == ("chat", "chat")
    for name in DOCUMENTED_COLUMNS:
        assert not row[name].startswith(("=", "+", "@")), name
    # Values that merely contain such characters are left alone.
    tricky = ratings.row_for("carol", "tricky")
    assert tricky["prompt"] == TRICKY_PROMPT


async def test_vote_before_a_regeneration_exports_the_answers_it_judged(
    ratings: Ratings,
) -> None:
    conversation = ratings.conversations[ratings.ids["regenerated"]]
    judged_a = ratings.generations[int(ratings.ids["judged_a"])]
    current_a = conversation["turns"][0]["a"]
    assert current_a["id"] != judged_a["id"]
    assert current_a["text"].startswith("Regenerated:")
    assert not judged_a["text"].startswith("Regenerated:")
    before = ratings.row_for("dave", "regenerated")
    assert before["response_a"] == judged_a["text"]
    assert before["completion_tokens_a"] == str(judged_a["completion_tokens"])
    after = ratings.row_for("erin", "regenerated")
    assert after["response_a"] == current_a["text"]
    assert before["response_b"] == after["response_b"] == conversation["turns"][0]["b"]["text"]


async def test_pandas_and_datasets_read_the_same_table(
    ratings: Ratings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ratings.csv"
    path.write_bytes(ratings.response.content)
    rows = ratings.rows

    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert list(frame.columns) == DOCUMENTED_COLUMNS
    assert frame.to_dict("records") == rows
    typed = pd.read_csv(path, keep_default_na=False)
    assert [int(s) for s in typed["seed"]] == [int(r["seed"]) for r in rows]

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    as_text = datasets.Features({name: datasets.Value("string") for name in DOCUMENTED_COLUMNS})
    dataset = datasets.load_dataset(
        "csv",
        data_files=str(path),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
        keep_default_na=False,
        features=as_text,
    )
    assert dataset.column_names == DOCUMENTED_COLUMNS
    assert dataset.to_list() == rows
    inferred = datasets.load_dataset(
        "csv", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache-2"),
        keep_default_na=False,
    )  # fmt: skip
    by_id = {int(r["vote_id"]): r for r in rows}
    for record in inferred:
        row = by_id[int(record["vote_id"])]
        for name in ("prompt", "response_a", "response_b", "history_json", "comment"):
            assert record[name] == row[name], name
        assert int(record["seed"]) == int(row["seed"])


async def test_shifted_ratios_are_the_judged_answers_analyses(
    ratings: Ratings, tmp_path: Path
) -> None:
    multi = ratings.conversations[ratings.ids["multi"]]
    analysed = multi["turns"][0]["b"]["shifted_ratio"]
    assert analysed is not None and 0 < analysed < 1
    first = ratings.row_for("alice", "multi", turn=1)
    assert (first["shifted_ratio_a"], first["shifted_ratio_b"]) == ("", repr(analysed))
    # Only the analysed answer has a ratio: its follow-up turn's answers have none.
    assert ratings.row_for("bob", "multi", turn=2)["shifted_ratio_b"] == ""
    formulas = ratings.row_for("@mallory", "formulas")
    assert formulas["shifted_ratio_a"] != "" and formulas["shifted_ratio_b"] == ""
    assert sum(r["shifted_ratio_a"] != "" or r["shifted_ratio_b"] != "" for r in ratings.rows) == 2
    # pandas reads the new columns as numbers, empty cells as missing.
    path = tmp_path / "ratings.csv"
    path.write_bytes(ratings.response.content)
    frame = pd.read_csv(path)
    assert list(frame.columns[31:33]) == ["shifted_ratio_a", "shifted_ratio_b"]
    assert frame["shifted_ratio_b"].dtype == float and frame["shifted_ratio_a"].dtype == float
    row = frame[(frame["rater"] == "alice") & (frame["turn"] == 1)].iloc[0]
    assert row["shifted_ratio_b"] == analysed and pd.isna(row["shifted_ratio_a"])
    assert int(frame["shifted_ratio_b"].notna().sum()) == 1


async def test_empty_database_exports_just_the_header(client: httpx.AsyncClient) -> None:
    response = await client.get(EXPORT_URL)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "text/csv"
    assert response.text == ",".join(DOCUMENTED_COLUMNS) + "\r\n"


async def test_conversations_without_votes_export_just_the_header(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base_server.config.answer_words = 3
    chat_server.config.answer_words = 3
    created = await client.post(
        "/api/v1/comparisons", json={"prompt": "x", "params": {"max_tokens": 4}}
    )
    assert created.status_code == 201
    response = await client.get(EXPORT_URL)
    assert response.text == ",".join(DOCUMENTED_COLUMNS) + "\r\n"


async def test_export_of_more_votes_than_one_chunk_has_every_row(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    # One and a half of the export's chunks of rows; inserted directly, for speed.
    votes, turns_per_conversation = CHUNK_ROWS + CHUNK_ROWS // 2, 3
    start = datetime(2025, 1, 1, tzinfo=UTC)
    params = {"temperature": 0.7, "top_p": 0.95, "top_k": -1, "max_tokens": 8, "seed": 7,
              "stop": [], "repetition_penalty": 1.0}  # fmt: skip
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ("c", "p", "t", "g", "j", "e")}
    for i in range(votes):
        number, cid = i % turns_per_conversation + 1, f"{i // turns_per_conversation:032x}"
        at = start + timedelta(seconds=i)
        if number == 1:
            rows["c"].append({"id": cid, "created_at": at, "updated_at": at, "title": f"c{i}",
                              "base_format": "raw"})  # fmt: skip
            rows["p"] += [
                {"conversation_id": cid, "slot": slot, "position": position, "model_name": kind,
                 "model_kind": kind}
                for position, (slot, kind) in enumerate((("a", "base"), ("b", "chat")))
            ]  # fmt: skip
        rows["t"].append({"id": i + 1, "conversation_id": cid, "number": number,
                          "prompt": f"prompt {i}", "params": params, "created_at": at})  # fmt: skip
        for offset, side in ((1, "a"), (2, "b")):
            rows["g"].append({
                "id": 2 * i + offset, "turn_id": i + 1, "slot": side, "is_current": True,
                "model_name": side, "model_kind": "base", "served_model": side,
                "endpoint": "http://x/v1/completions", "prompt_format": "raw",
                "prompt_text": f"prompt {i}", "params": params, "seed": 7, "status": "done",
                "text": f"answer {side} {i}", "finish_reason": "stop", "completion_tokens": 3,
                "created_at": at,
            })  # fmt: skip
        rows["j"].append({"id": i + 1, "turn_id": i + 1, "rater": "bulk", "all_bad": False,
                          "blind": False, "created_at": at, "updated_at": at})  # fmt: skip
        rows["e"] += [
            {"judgement_id": i + 1, "slot": slot, "generation_id": 2 * i + offset,
             "position": offset - 1, "rank": offset}
            for offset, slot in ((1, "a"), (2, "b"))
        ]  # fmt: skip
    tables = {"c": Conversation, "p": Participant, "t": Turn, "g": Generation, "j": Judgement,
              "e": JudgementEntry}  # fmt: skip
    async with app.state.playground.sessions() as session, session.begin():
        for key, model in tables.items():
            await session.execute(sa.insert(model), rows[key])

    response = await client.get(EXPORT_URL)
    assert response.status_code == 200
    exported = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert len(exported) == votes
    assert [int(r["vote_id"]) for r in exported] == list(range(1, votes + 1))
    last = exported[-1]
    assert (last["prompt"], last["response_a"]) == (f"prompt {votes - 1}", f"answer a {votes - 1}")
    earlier = votes - 1 - (votes - 1) % turns_per_conversation
    assert [h["prompt"] for h in json.loads(last["history_json"])] == [
        f"prompt {i}" for i in range(earlier, votes - 1)
    ]
