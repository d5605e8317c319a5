"""Configuration: models file errors, settings, database URLs, and the `playground` CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import (
    ConfigError,
    ModelKind,
    Settings,
    load_models_file,
    load_settings,
    to_async_url,
)

ROOT = Path(__file__).resolve().parent.parent
PLAYGROUND = ROOT / ".venv" / "bin" / "playground"

GOOD = """
[[models]]
name = "base"
kind = "base"
url = "http://127.0.0.1:8001/v1/"
model = "org/base"
revision = "abc123"

[[models]]
name = "chat"
kind = "chat"
url = "https://chat.example/v1"
model = "org/chat"
chat_template = "{{ messages }}"
"""

CHAT_ENTRY = """
[[models]]
name = "chat"
kind = "chat"
url = "http://127.0.0.1:8002/v1"
model = "org/chat"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_models_file(path)
    message = str(caught.value)
    assert str(path) in message, "the error names the file"
    return message


def test_good_models_file_loads_in_order_with_trailing_slash_removed(tmp_path: Path) -> None:
    models = load_models_file(write(tmp_path, GOOD))
    assert [m.name for m in models.models] == ["base", "chat"]
    base, chat = models.models
    assert base.kind is ModelKind.BASE and chat.kind is ModelKind.CHAT
    assert base.url == "http://127.0.0.1:8001/v1"
    assert base.revision == "abc123"
    assert chat.chat_template == "{{ messages }}"
    assert models.first_of_kind(ModelKind.CHAT) is chat
    assert models.get("nope") is None


def test_missing_models_file_says_not_found(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load_models_file(path)
    assert str(path) in str(caught.value)


def test_bad_toml_says_not_valid_toml_and_where(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[models]]\nname = "base\n')
    assert "not valid TOML" in message
    assert "line 2" in message


def test_file_without_models_says_models_are_required(tmp_path: Path) -> None:
    message = config_error(tmp_path, "# nothing here\n")
    assert "models" in message and "required" in message.lower()


def test_empty_models_list_says_at_least_one(tmp_path: Path) -> None:
    message = config_error(tmp_path, "models = []\n")
    assert "models" in message and "at least 1" in message


def test_duplicate_names_name_the_duplicate(tmp_path: Path) -> None:
    message = config_error(tmp_path, CHAT_ENTRY + CHAT_ENTRY)
    assert "'chat'" in message and "twice" in message


def test_bad_kind_names_the_field_and_allowed_values(tmp_path: Path) -> None:
    message = config_error(tmp_path, CHAT_ENTRY.replace('kind = "chat"', 'kind = "instruct"'))
    assert "models.0.kind" in message
    assert "'base'" in message and "'chat'" in message


def test_missing_url_and_source_names_both(tmp_path: Path) -> None:
    text = CHAT_ENTRY.replace('url = "http://127.0.0.1:8002/v1"\n', "")
    message = config_error(tmp_path, text)
    assert "models.0" in message and "`url`" in message and "`source`" in message


def test_source_without_url_is_a_model_to_launch(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nname = "b"\nkind = "base"\nsource = "Qwen/Qwen2.5-0.5B"\n')
    model = load_models_file(path).models[0]
    assert model.launched and model.url is None
    assert model.model == "Qwen/Qwen2.5-0.5B"  # served under its source name by default


def test_url_without_http_scheme_names_the_field(tmp_path: Path) -> None:
    message = config_error(tmp_path, CHAT_ENTRY.replace("http://", ""))
    assert "models.0.url" in message
    assert "http" in message


def test_chat_template_on_a_base_model_is_rejected(tmp_path: Path) -> None:
    text = CHAT_ENTRY.replace('kind = "chat"', 'kind = "base"') + 'chat_template = "x"\n'
    message = config_error(tmp_path, text)
    assert "chat_template" in message and "chat" in message
    assert "models.0" in message


def test_unknown_key_is_named(tmp_path: Path) -> None:
    message = config_error(tmp_path, CHAT_ENTRY + 'colour = "blue"\n')
    assert "models.0.colour" in message
    assert "not permitted" in message


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    message = config_error(tmp_path, 'default = "chat"\n' + CHAT_ENTRY)
    assert "default" in message and "not permitted" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = CHAT_ENTRY.replace('kind = "chat"', 'kind = "x"').replace("http://", "ftp://")
    message = config_error(tmp_path, text)
    assert "models.0.kind" in message and "models.0.url" in message


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PLAYGROUND_* or DATABASE_URL from the surrounding environment."""
    for name in list(os.environ):
        if name.startswith("PLAYGROUND_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    return monkeypatch


def test_production_without_secret_key_fails_naming_the_variable(
    clean_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="PLAYGROUND_SECRET_KEY"):
        Settings(env="production")
    clean_env.setenv("PLAYGROUND_ENV", "production")
    with pytest.raises(ConfigError, match="PLAYGROUND_SECRET_KEY"):
        load_settings()


def test_production_with_short_secret_key_fails(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env="production", secret_key="x" * 31)


def test_production_with_long_secret_key_is_accepted(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PLAYGROUND_ENV", "production")
    clean_env.setenv("PLAYGROUND_SECRET_KEY", "k" * 32)
    clean_env.setenv("PLAYGROUND_ALLOWED_HOSTS", "playground.example.org")
    settings = load_settings()
    assert settings.env == "production"
    assert settings.resolved_secret_key() == "k" * 32


def test_development_without_secret_key_gets_a_random_one(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    first, second = settings.resolved_secret_key(), settings.resolved_secret_key()
    assert len(first) >= 32 and first != second


def test_bad_setting_value_is_a_config_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PLAYGROUND_ENV", "staging")
    with pytest.raises(ConfigError, match="env"):
        load_settings()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/playground.db", "sqlite+aiosqlite:///data/playground.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("postgresql://u:p@db:5432/pg", "postgresql+psycopg://u:p@db:5432/pg"),
        ("postgres://u:p@db/pg", "postgresql+psycopg://u:p@db/pg"),
        ("postgresql+psycopg://u@db/pg", "postgresql+psycopg://u@db/pg"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_to_async_url_maps_to_async_drivers(url: str, expected: str) -> None:
    assert to_async_url(url) == expected


def test_database_url_defaults_to_sqlite_in_data_dir(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/playground.db"
    clean_env.setenv("DATABASE_URL", "postgres://u@db/pg")
    assert Settings().resolved_database_url() == "postgresql+psycopg://u@db/pg"


def cli_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PLAYGROUND_") and k != "DATABASE_URL"
    }
    return env | extra


def test_cli_serve_with_missing_models_file_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(PLAYGROUND), "serve", "--models", "/nonexistent.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=cli_env(),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "/nonexistent.toml" in lines[0] and "not found" in lines[0]
    assert "Traceback" not in result.stderr
    assert "Playground on" not in result.stdout


def test_cli_serve_in_production_without_secret_exits_2_with_one_line(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(CHAT_ENTRY, encoding="utf-8")
    result = subprocess.run(
        [str(PLAYGROUND), "serve", "--models", str(models)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=cli_env(PLAYGROUND_ENV="production"),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PLAYGROUND_SECRET_KEY" in lines[0]


def test_cli_db_upgrade_creates_the_tables(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    result = subprocess.run(
        [str(PLAYGROUND), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=cli_env(DATABASE_URL=f"sqlite:///{db}"),
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        head = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"conversations", "participants", "turns", "generations", "judgements"} <= tables
    assert len(head) == 1


def test_cli_without_a_command_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=cli_env(),
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr
