"""`playground prompts import|list` and `playground run` against the app served over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from app.cli import main
from tests.support import ThreadedServer


@pytest.fixture
def app_url(app: FastAPI) -> Iterator[str]:
    """The test app served over real HTTP."""
    with ThreadedServer(app) as server:
        yield server.url


def test_import_list_and_run(
    app_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"p{i}"}) for i in range(3)))
    assert main(["prompts", "import", str(path), "--name", "cli", "--url", app_url]) == 0
    assert "imported 3 items as prompt set cli" in capsys.readouterr().out
    assert main(["prompts", "list", "--url", app_url]) == 0
    assert "cli" in capsys.readouterr().out
    code = main(
        ["run", "cli", "--models", "base", "chat", "--seed", "5", "--poll", "0.05",
         "--url", app_url]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().endswith("/runs/1")
    assert "6/6 (0 failed) done" in err and "[" in err


def test_bad_file_is_one_line_and_exit_1(
    app_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("prompt,id\nfine,a\n,b\n")
    assert main(["prompts", "import", str(path), "--name", "bad", "--url", app_url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("playground: refused (HTTP 422): line 3: prompt")
    assert main(["run", "nope", "--models", "base", "chat", "--url", app_url]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_import_from_a_local_dataset(
    app_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    datasets = pytest.importorskip("datasets")
    rows = {"question": ["What is 1+1?", "Name a colour."], "tags": [["math"], ["colours"]]}
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(tmp_path / "d")
    code = main(
        ["prompts", "import", "--dataset", str(tmp_path / "d"), "--split", "test",
         "--column", "question", "--name", "hf", "--url", app_url]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "imported 2 items as prompt set hf" in out
    code = main(
        ["prompts", "import", "--dataset", str(tmp_path / "d"), "--split", "test",
         "--column", "nope", "--name", "hf2", "--url", app_url]
    )  # fmt: skip
    assert code == 1 and "no column 'nope'" in capsys.readouterr().err
    code = main(
        ["prompts", "import", "--dataset", str(tmp_path / "missing"), "--name", "hf3",
         "--url", app_url]
    )  # fmt: skip
    assert code == 1 and "cannot load dataset" in capsys.readouterr().err
