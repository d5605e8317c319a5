"""`playground check` against the app served over HTTP: exit 1 when the tuned model is
significantly worse, 0 otherwise, 2 when the check cannot be made."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from app.cli import main
from playground_tools.fake_vllm import FakeServer
from tests.forgetting.helpers import ITEMS, item, script
from tests.support import ThreadedServer


@pytest.fixture
def app_url(app: FastAPI) -> Iterator[str]:
    """The test app served over real HTTP."""
    with ThreadedServer(app) as server:
        yield server.url


def import_set(app_url: str, tmp_path: Path, name: str, items: list[dict[str, object]]) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in items))
    assert main(["prompts", "import", str(path), "--name", name, "--url", app_url]) == 0


ROME = [item(f"q{i}", f"Question {i}?", "contains", "Rome") for i in range(12)]


def check(app_url: str, *extra: str) -> int:
    return main(["check", "--poll", "0.05", "--url", app_url, *extra])


def test_tuned_significantly_worse_exits_1(
    app_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    base_server: FakeServer, chat_server: FakeServer,
) -> None:  # fmt: skip
    script(base_server, chat_server, tuned_says="Paris")
    import_set(app_url, tmp_path, "rome", ROME)
    capsys.readouterr()
    code = check(app_url, "--set", "rome", "--original", "base", "--tuned", "chat", "--seed", "3")
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "24/24 (0 failed) done" in err
    assert "base" in out and "accuracy 1.000" in out and "accuracy 0.000" in out
    assert "difference (chat - base): -1.000" in out
    assert "forgot 12: q0, q1," in out and "learned 0:" in out
    assert "verdict: chat is significantly worse than base" in out
    assert f"{app_url}/runs/1/report?original=base&tuned=chat" in out
    # The same run again, by id, without starting another.
    assert check(app_url, "--run", "1", "--original", "base", "--tuned", "chat") == 1
    assert "run 1 on rome" in capsys.readouterr().out


def test_not_significantly_worse_exits_0(
    app_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    base_server: FakeServer, chat_server: FakeServer,
) -> None:  # fmt: skip
    script(base_server, chat_server)
    import_set(app_url, tmp_path, "facts", ITEMS)
    capsys.readouterr()
    code = check(app_url, "--set", "facts", "--original", "base", "--tuned", "chat")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "7 of 8 items scored (1 without reference, 0 with a failed answer)" in out
    assert "forgot 3: rome, exact, regex" in out and "learned 1: berlin" in out
    assert "verdict: no significant difference" in out


def test_errors_exit_2(
    app_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    base_server: FakeServer, chat_server: FakeServer,
) -> None:  # fmt: skip
    script(base_server, chat_server)
    import_set(app_url, tmp_path, "plain", [{"prompt": "Hello?"}, {"prompt": "Why?"}])
    capsys.readouterr()
    assert check(app_url, "--set", "plain", "--original", "base", "--tuned", "chat") == 2
    assert "has no item with a reference" in capsys.readouterr().err
    assert check(app_url, "--set", "nope", "--original", "base", "--tuned", "chat") == 2
    assert "no prompt set 'nope'" in capsys.readouterr().err
    import_set(app_url, tmp_path, "rome", ROME)
    capsys.readouterr()
    assert check(app_url, "--set", "rome", "--original", "base", "--tuned", "missing") == 2
    assert "unknown model 'missing'" in capsys.readouterr().err
    assert check(app_url, "--set", "rome") == 2
    assert "give --set, --original and --tuned" in capsys.readouterr().err
    assert check(app_url, "--run", "77", "--original", "base", "--tuned", "chat") == 2
    assert "HTTP 404" in capsys.readouterr().err
    # A run whose tuned model failed everywhere cannot be checked.
    chat_server.config.fail_status = 500
    assert check(app_url, "--set", "rome", "--original", "base", "--tuned", "chat") == 2
    assert "could be scored" in capsys.readouterr().err
    assert check("http://127.0.0.1:9", "--set", "rome", "--original", "a", "--tuned", "b") == 2
    assert "cannot reach the playground" in capsys.readouterr().err
