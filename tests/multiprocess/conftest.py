"""Real app processes on one PostgreSQL database, with fake vLLM servers in this process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from playground_tools.fake_vllm import FakeConfig, FakeServer
from tests.conftest import postgres_database, postgres_server_url
from tests.support import SSEEvent

ROOT = Path(__file__).resolve().parents[2]
CSRF_META = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')
START_SECONDS = 60.0
# Short liveness intervals, so that a killed process is found dead quickly (still several
# beats, so that a loaded machine does not take a live process for dead).
LIVENESS_ENV = {
    "PLAYGROUND_HEARTBEAT_SECONDS": "0.25",
    "PLAYGROUND_STALE_AFTER_SECONDS": "3",
    "PLAYGROUND_FOLLOW_POLL_SECONDS": "0.25",
}
needs_postgres = pytest.mark.skipif(
    postgres_server_url() is None, reason="several processes need PostgreSQL (TEST_POSTGRES_URL)"
)


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AppProcess:
    """One `playground serve` process."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """kill -9: no shutdown, no final stores."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@dataclass
class Cluster:
    """App processes on one database, and the fakes they use."""

    database_url: str
    models_file: Path
    tmp: Path
    fakes: list[FakeServer]
    processes: list[AppProcess] = field(default_factory=list)
    # Settings for every process started from now on (over the test defaults above).
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of an app process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
        env.update(
            DATABASE_URL=self.database_url,
            PLAYGROUND_DATA_DIR=str(self.tmp),
            PLAYGROUND_SECRET_KEY="multiprocess-secret-" + "x" * 32,
            PLAYGROUND_STREAM_FLUSH_SECONDS="0.01",
            **LIVENESS_ENV,
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def start(self, *args: str) -> AppProcess:
        """Start `playground serve` on a free port and wait until it answers."""
        port = free_port()
        log = self.tmp / f"app-{port}.log"
        command = [sys.executable, "-m", "app.cli", "serve", "--models", str(self.models_file)]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        app = AppProcess(f"http://127.0.0.1:{port}", process, log)
        self.processes.append(app)
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{app.url}/healthz", timeout=2).status_code == 200:
                    return app
            except httpx.TransportError:
                pass
            time.sleep(0.05)

    def hold(self, tokens: int | None) -> None:
        """Hold every model stream after `tokens` tokens (None: let them flow)."""
        for fake in self.fakes:
            answer = httpx.post(f"{fake.root_url}/fake/config", json={"hold_after_tokens": tokens})
            answer.raise_for_status()

    def stop_all(self) -> None:
        """Stop every process still running (SIGTERM, then SIGKILL)."""
        for app in self.processes:
            if app.process.poll() is None:
                app.process.terminate()
        for app in self.processes:
            try:
                app.process.wait(15)
            except subprocess.TimeoutExpired:
                app.kill()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh PostgreSQL database, two fakes, and whatever app processes the test starts."""
    server = postgres_server_url()
    assert server is not None
    base = FakeServer(FakeConfig(served_model_name="tiny-base", answer_words=40))
    chat = FakeServer(FakeConfig(served_model_name="tiny-chat", answer_words=40))
    models = tmp_path / "models.toml"
    models.write_text(
        "[[models]]\n"
        f'name = "base"\nkind = "base"\nurl = "{base.base_url}"\nmodel = "tiny-base"\n\n'
        "[[models]]\n"
        f'name = "chat"\nkind = "chat"\nurl = "{chat.base_url}"\nmodel = "tiny-chat"\n'
    )
    with base, chat, postgres_database(server) as url:
        cluster = Cluster(url, models, tmp_path, [base, chat])
        try:
            yield cluster
        finally:
            cluster.hold(None)
            cluster.stop_all()


def browser(app: AppProcess) -> tuple[httpx.Client, dict[str, str]]:
    """A client with the CSRF cookie, and the headers htmx would send (valid at every process:
    they share the secret key)."""
    client = httpx.Client(timeout=30)
    page = client.get(f"{app.url}/")
    match = CSRF_META.search(page.text)
    assert match, "page carries no CSRF token"
    return client, {"X-CSRF-Token": match.group(1), "HX-Request": "true"}


def start_comparison(client: httpx.Client, headers: dict[str, str], app: AppProcess) -> str:
    """Start a base/chat comparison through the form (it answers while the models generate)."""
    created = client.post(f"{app.url}/c", data={"prompt": "Tell a story"}, headers=headers)
    assert created.status_code == 204, created.text
    return created.headers["HX-Location"].rsplit("/", 1)[1]


def read_events(lines: Iterator[str], until: Callable[[list[SSEEvent]], bool]) -> list[SSEEvent]:
    """Read server-sent events from an open stream until `until(events)` holds."""
    events: list[SSEEvent] = []
    name, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                events.append(SSEEvent(name, "\n".join(data), event_id))
                if until(events):
                    return events
            name, event_id = "message", None
            data = []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
        elif key == "id":
            event_id = value
    raise AssertionError(f"the stream ended before the condition held: {events}")
