"""The urial base-model format: the shipped data file, rendering, stops, and bad format files."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.config import ConfigError, ModelsFile
from app.generation.prompts import Exchange
from app.generation.urial import (
    DEFAULT_FORMAT_FILE,
    UrialExample,
    UrialFormat,
    load_urial_format,
    urial_prompt,
)
from playground_tools.fake_vllm import FakeServer

SMALL = UrialFormat(
    preamble="A helpful assistant answers.",
    user_marker="Q:",
    assistant_marker="A:",
    stop=["\nQ:"],
    examples=[UrialExample(query="Two plus two?", answer="Four.")],
)


def test_the_shipped_format_loads_with_examples() -> None:
    fmt = load_urial_format()
    assert len(fmt.examples) >= 3
    assert fmt.preamble.strip()
    assert DEFAULT_FORMAT_FILE.name == "urial.toml" and DEFAULT_FORMAT_FILE.is_file()


def test_rendering_order_and_ending() -> None:
    history = [Exchange("Hi", "Hello!"), Exchange("Name a colour.", " Blue. ")]
    prompt = urial_prompt("  What is a river?  ", history, system="Be brief.", fmt=SMALL)
    assert prompt.text == (
        "A helpful assistant answers.\n\n"
        "Be brief.\n\n"
        "Q:\nTwo plus two?\n\nA:\nFour.\n\n"
        "Q:\nHi\n\nA:\nHello!\n\n"
        "Q:\nName a colour.\n\nA:\nBlue.\n\n"
        "Q:\nWhat is a river?\n\nA:\n"
    )
    assert prompt.extra_stop == ["\nQ:"]


def test_the_shipped_format_renders_every_example_then_the_prompt() -> None:
    fmt = load_urial_format()
    text = urial_prompt("What is a river?").text
    assert text.startswith(fmt.preamble.strip())
    positions = [text.index(example.answer.strip()) for example in fmt.examples]
    assert positions == sorted(positions)
    assert text.endswith(f"{fmt.user_marker}\nWhat is a river?\n\n{fmt.assistant_marker}\n")
    assert text.count(fmt.assistant_marker) == len(fmt.examples) + 1


async def test_the_stop_ends_a_base_models_answer(
    models: ModelsFile, base_server: FakeServer
) -> None:
    base = models.get("base")
    assert base is not None
    prompt = urial_prompt("What is a river?")
    fmt = load_urial_format()
    # A base model that answers, then starts writing the next user turn itself.
    base_server.config.inject_text = f"Water that flows.\n{fmt.user_marker}\nAnd a lake?"
    body = {"model": base.model, "prompt": prompt.text, "stop": prompt.extra_stop}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{base.server_url}/completions", json=body)
    assert response.json()["choices"][0]["text"] == "Water that flows."


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "format.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_custom_format_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'preamble = "Chat log."\nuser_marker = "> me"\nassistant_marker = "> bot"\n'
        'stop = ["\\n> me"]\n[[examples]]\nquery = "Hi"\nanswer = "Hey."\n',
    )
    fmt = load_urial_format(path)
    assert (
        urial_prompt("Ok?", fmt=fmt).text
        == "Chat log.\n\n> me\nHi\n\n> bot\nHey.\n\n> me\nOk?\n\n> bot\n"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("user_marker = ", "not valid TOML"),
        ('user_marker = "U"\nassistant_marker = "A"', "stop: Field required"),
        ('user_marker = "U"\nassistant_marker = "A"\nstop = []', "stop"),
        ('user_marker = "U\\nV"\nassistant_marker = "A"\nstop = ["x"]', "one line"),
        ('user_marker = "U"\nassistant_marker = "U"\nstop = ["x"]', "must differ"),
        ('user_marker = "U"\nassistant_marker = "A"\nstop = ["x"]\ncolour = 1', "colour"),
        ('user_marker = "U"\nassistant_marker = "A"\nstop = ["' + "x" * 65 + '"]', "64"),
        (
            'user_marker = "U"\nassistant_marker = "A"\nstop = ["\\nU"]\n'
            '[[examples]]\nquery = "q"\nanswer = "a\\nU b"',
            "example 1's answer contains the stop sequence",
        ),
    ],
)
def test_bad_format_files_name_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="urial format file") as raised:
        load_urial_format(path)
    assert fragment in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_missing_format_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_urial_format(tmp_path / "nope.toml")
