"""Running the fake app: FakeServer (uvicorn in a thread), run_fake_server and the CLI main."""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from playground_tools.fake_vllm.app import create_fake_app, fake_state
from playground_tools.fake_vllm.config import FakeConfig, JSONObject
from playground_tools.fake_vllm.tokenizer import DEFAULT_VOCAB_ID


class FakeServer:
    """The fake app served over real HTTP by uvicorn in a daemon thread; a context manager."""

    def __init__(
        self, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_fake_app(config)
        self.state = fake_state(self.app)
        self.config: FakeConfig = self.state.config
        self.requests: list[JSONObject] = self.state.requests
        self.host = host
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        """http://HOST:PORT."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://HOST:PORT/v1, what an OpenAI client takes as base_url."""
        return f"{self.root_url}/v1"

    def start(self, timeout: float = 10.0) -> None:
        """Serve in a daemon thread and return once uvicorn accepts connections."""
        server = uvicorn.Server(_uvicorn_config(self.app, self.host, self.port))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, daemon=True, name="fake-vllm"
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake vLLM server did not start")
            time.sleep(0.005)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
        self._socket.close()

    def reset(self) -> None:
        """Back to the starting config (in place) with an empty request log."""
        self.state.reset()

    def __enter__(self) -> FakeServer:
        """Start serving."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    """A bound socket, so port 0 picks a free port we know before uvicorn starts (no race)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings for an embedded server: quiet, and no global logging setup."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # leave the host process's (e.g. pytest's) logging alone
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Don't let an abandoned stream hold up shutdown for long.
        timeout_graceful_shutdown=1,
    )


def run_fake_server(
    config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> FakeServer:
    """A FakeServer to use in a with-statement: `with run_fake_server() as server: ...`."""
    return FakeServer(config, host=host, port=port)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; each maps to a FakeConfig field."""
    parser = argparse.ArgumentParser(description="A fake vLLM OpenAI-compatible server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--served-model-name", default="fake-model")
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--answer-words", type=int, default=24)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--inject-text", default=None)
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--fail-after-tokens", type=int, default=None)
    parser.add_argument("--vocab-id", default=DEFAULT_VOCAB_ID)
    # As vLLM's flags: NAME=PATH adapters (--enable-lora and --max-lora-rank change nothing here).
    parser.add_argument("--lora-modules", nargs="*", default=[], metavar="NAME=PATH")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--max-lora-rank", type=int, default=None)
    return parser.parse_args(argv)


def _lora_modules(specs: Sequence[str]) -> dict[str, str]:
    """NAME=PATH pairs as vLLM's --lora-modules takes them."""
    pairs = [spec.partition("=") for spec in specs]
    bad = [spec for spec, (_, sep, path) in zip(specs, pairs, strict=True) if not sep or not path]
    if bad:
        raise SystemExit(f"--lora-modules wants NAME=PATH, not {bad[0]!r}")
    return {name: path for name, _, path in pairs}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake server in the foreground until interrupted."""
    args = _parse_args(argv)
    config = FakeConfig(
        served_model_name=args.served_model_name,
        token_delay=args.token_delay,
        first_token_delay=args.first_token_delay,
        answer_words=args.answer_words,
        max_model_len=args.max_model_len,
        inject_text=args.inject_text,
        fail_status=args.fail_status,
        fail_after_tokens=args.fail_after_tokens,
        vocab_id=args.vocab_id,
        lora_modules=_lora_modules(args.lora_modules),
        # Read from the environment, as vLLM reads it.
        runtime_lora_updating=os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower()
        in ("1", "true"),
    )
    uvicorn.run(create_fake_app(config), host=args.host, port=args.port, log_level="info")
    return 0
