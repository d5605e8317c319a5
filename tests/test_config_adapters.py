"""LoRA adapter entries in the models file: what is accepted, and the message for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, ModelConfig, ModelKind, ModelsFile, load_models_file

PARENTS = """
[[models]]
name = "base"
kind = "base"
url = "http://127.0.0.1:8001/v1"
model = "org/base"
api_key = "k-1"

[[models]]
name = "launched"
kind = "base"
source = "/models/launched"
"""


def load(tmp_path: Path, extra: str) -> ModelsFile:
    path = tmp_path / "models.toml"
    path.write_text(PARENTS + extra, encoding="utf-8")
    return load_models_file(path)


def entry(models: ModelsFile, name: str) -> ModelConfig:
    found = models.get(name)
    assert found is not None, name
    return found


def problem(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    return str(caught.value)


def test_an_adapter_of_a_running_server_is_served_there_under_its_name(tmp_path: Path) -> None:
    models = load(
        tmp_path,
        '[[models]]\nname = "tuned"\nkind = "chat"\nadapter_of = "base"\nsource = "/ad/tuned"\n',
    )
    tuned = entry(models, "tuned")
    assert tuned.model == "tuned"  # vLLM serves an adapter under its LoRA name
    assert tuned.url == "http://127.0.0.1:8001/v1"
    assert tuned.api_key == "k-1"  # the parent's server wants the parent's key
    assert tuned.kind is ModelKind.CHAT and tuned.is_adapter and not tuned.launched
    assert models.parent_of("tuned") == models.get("base")
    assert models.parent_of("base") is None
    assert models.adapters_of("base") == (tuned,)


def test_an_adapter_of_a_launched_model_gets_its_url_once_the_parent_has_one(
    tmp_path: Path,
) -> None:
    models = load(
        tmp_path,
        '[[models]]\nname = "ad"\nkind = "base"\nadapter_of = "launched"\nsource = "x/y"\n',
    )
    assert entry(models, "ad").url is None
    started = ModelsFile(
        models=[
            m.model_copy(update={"url": "http://127.0.0.1:9000/v1"}) if m.launched else m
            for m in models.models
        ]
    )
    assert entry(started, "ad").url == "http://127.0.0.1:9000/v1"


def test_the_served_name_of_an_adapter_can_be_set(tmp_path: Path) -> None:
    models = load(
        tmp_path,
        '[[models]]\nname = "a"\nkind = "chat"\nadapter_of = "base"\nsource = "/a"\n'
        'model = "served-a"\n',
    )
    assert entry(models, "a").model == "served-a"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            'adapter_of = "nope"\nsource = "/a"',
            "'ad' is an adapter of 'nope', which is not in the models file",
        ),
        ('adapter_of = "ad"\nsource = "/a"', "'ad' cannot be an adapter of itself"),
        (
            'adapter_of = "base"\nsource = "/a"\nurl = "http://h:1/v1"',
            "is served by its parent's server, so it cannot set url",
        ),
        (
            'adapter_of = "base"\nsource = "/a"\nmax_model_len = 64\nlora = true',
            "cannot set max_model_len, lora",
        ),
        ('adapter_of = "base"', "an adapter needs `source`"),
    ],
)
def test_bad_adapter_entries_are_named(tmp_path: Path, entry: str, message: str) -> None:
    text = problem(tmp_path, f'[[models]]\nname = "ad"\nkind = "chat"\n{entry}\n')
    assert message in text
    assert text.startswith(f"models file {tmp_path / 'models.toml'} is invalid: ")


def test_an_adapter_of_an_adapter_is_refused(tmp_path: Path) -> None:
    text = problem(
        tmp_path,
        '[[models]]\nname = "a1"\nkind = "chat"\nadapter_of = "base"\nsource = "/a1"\n'
        '[[models]]\nname = "a2"\nkind = "chat"\nadapter_of = "a1"\nsource = "/a2"\n',
    )
    assert "'a2' is an adapter of 'a1', which is itself an adapter" in text


def test_a_model_with_adapters_cannot_turn_lora_off(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "m"\nkind = "base"\nsource = "/m"\nlora = false\n'
        '[[models]]\nname = "a"\nkind = "chat"\nadapter_of = "m"\nsource = "/a"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="'m' has adapters, so it cannot set lora = false"):
        load_models_file(path)


def test_max_lora_rank_must_be_one_vllm_allows(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "m"\nkind = "base"\nsource = "/m"\nmax_lora_rank = 12\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"max_lora_rank must be one vLLM allows: 1, 8, 16"):
        load_models_file(path)


def test_with_model_returns_a_new_file_and_refuses_a_taken_name() -> None:
    base = ModelConfig(name="b", kind=ModelKind.BASE, url="http://h:1/v1", model="m")
    models = ModelsFile(models=[base])
    adapter = ModelConfig(name="a", kind=ModelKind.CHAT, adapter_of="b", source="/a")
    more = models.with_model(adapter)
    assert [m.name for m in models.models] == ["b"]  # unchanged
    assert entry(more, "a").url == "http://h:1/v1"
    with pytest.raises(ValueError, match="model name 'a' is listed twice"):
        more.with_model(adapter)
