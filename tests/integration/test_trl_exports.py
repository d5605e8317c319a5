"""The training exports as TRL takes them: loaded with `datasets`, checked by TRL's own dataset
helpers, and one step of DPOTrainer, KTOTrainer and RewardTrainer on a tiny local model.

The judgements are inserted straight into the database; the files are downloaded from the API
exactly as a user would, and trl_check.py runs on them in the vLLM virtualenv (torch, TRL).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import ModelConfig, ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.integration.conftest import REPO, VLLM_VENV, TinyModels
from tests.leaderboard.factory import Vote, insert

CHECK = Path(__file__).with_name("trl_check.py")
TRL_STAMP = VLLM_VENV / ".trl-installed"
KINDS = ("dpo", "kto", "reward")
FORMS = ("standard", "conversational")
PROVENANCE = ["judgement_id", "rater", "prompt_set"]
COLUMNS = {
    "dpo": ["prompt", "chosen", "rejected", *PROVENANCE, "models", "seed"],
    "kto": ["prompt", "completion", "label", *PROVENANCE, "model", "seed"],
    "reward": ["chosen", "rejected", *PROVENANCE, "models", "seed"],
}
VOTES = [
    # y over x, after an earlier turn and under a system prompt.
    Vote(["x", "y"], [2, 1], system="Be brief.", history=[("Hi", ["hi x", "hi y"])], prompt="2+2?"),
    Vote(["x", "y"], [1, 2], prompt="Why?"),  # x over y on a first turn
    Vote(["a", "b", "c"], [1, 2, 2]),  # a over b, a over c
    Vote(["x", "y"], [1, 1]),  # a tie: dropped
]
ROWS = {"dpo": 4, "kto": 7, "reward": 4}


async def download(client: httpx.AsyncClient, directory: Path) -> None:
    """Every export in both forms, as JSONL and Parquet, saved as the API sends it."""
    for kind in KINDS:
        for form in FORMS:
            for extension in ("jsonl", "parquet"):
                response = await client.get(
                    f"/api/v1/exports/{kind}.{extension}", params={"form": form}
                )
                assert response.status_code == 200, response.text
                (directory / f"{kind}-{form}.{extension}").write_bytes(response.content)


def run_check(directory: Path, model: Path) -> dict[str, Any]:
    """trl_check.py in the vLLM virtualenv; its findings are the last line it prints."""
    result = subprocess.run(
        [str(VLLM_VENV / "bin" / "python"), str(CHECK), str(directory), str(model)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def models(chat_server: FakeServer) -> ModelsFile:
    """A fake model: the judgements are inserted, no answer is generated, no vLLM starts."""
    return ModelsFile(
        models=[
            ModelConfig(
                name="chat", kind=ModelKind.CHAT, url=chat_server.base_url, model="tiny-chat"
            )
        ]
    )


@pytest.fixture
def trl_installed(vllm_python: Path) -> str:
    """The TRL pin scripts/setup-vllm.sh installed; fails (never skips) without it."""
    if not TRL_STAMP.exists():
        pytest.fail(f"TRL is not installed in {VLLM_VENV}: run `bash scripts/setup-vllm.sh`")
    [trl] = [p for p in TRL_STAMP.read_text().split() if p.startswith("trl==")]
    return trl.removeprefix("trl==")


async def test_trl_loads_checks_and_trains_on_the_exports_as_they_are(
    client: httpx.AsyncClient,
    app: FastAPI,
    tmp_path: Path,
    tiny_models: TinyModels,
    trl_installed: str,
) -> None:
    await insert(app, VOTES)
    await download(client, tmp_path)
    report = run_check(tmp_path, tiny_models.chat)
    assert report["trl"] == trl_installed

    for kind in KINDS:
        for form in FORMS:
            jsonl, parquet = (report["loaded"][f"{kind}-{form}.{e}"] for e in ("jsonl", "parquet"))
            assert jsonl["columns"] == parquet["columns"] == COLUMNS[kind]
            assert jsonl["rows"] == parquet["rows"] == ROWS[kind]
            if kind == "kto":
                assert jsonl["label_dtype"] == parquet["label_dtype"] == "bool"

    for key, found in report["helpers"].items():
        conversational = "conversational" in key
        assert found["conversational"] is conversational, key
        assert found["prompt_after_extract"], key
        assert found["templated_are_strings"], key
        if conversational:
            # The tiny chat model's template, with the generation prompt TRL adds.
            prompt = found["templated"]["prompt"]
            assert prompt.startswith("<s><|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n"), key
            if not key.startswith("reward"):
                assert prompt.endswith("<|user|>\n2+2?</s>\n<|assistant|>\n"), key

    for form in FORMS:
        for extension in ("jsonl", "parquet"):
            dpo = report["helpers"][f"dpo-{form}.{extension}"]
            kto = report["helpers"][f"kto-{form}.{extension}"]
            # TRL's own DPO -> KTO conversion gives the KTO export's columns and labels.
            assert set(COLUMNS["kto"]) - {"model"} <= set(dpo["unpaired_columns"])
            assert {tuple(r) for r in dpo["unpaired"]} == {tuple(r) for r in kto["kto"]}
            assert kto["label_types"] == ["bool"]

    for name, step in report["train"].items():
        assert step["steps"] == 1, name
        assert step["finite"], (name, step["loss"])
        # TRL tokenized each prompt as a prefix of prompt + answer (the boundary is clean).
        assert not [m for m in step["logged"] if "not a prefix" in m], (name, step["logged"])
