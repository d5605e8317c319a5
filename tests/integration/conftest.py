"""Real vLLM servers (CPU build, tiny local random-weight models) for the integration tests.

Needs the separate vLLM virtualenv made by ``scripts/setup-vllm.sh`` (``.venv-vllm``, or
$VLLM_VENV). Without it these tests FAIL, so CI cannot pass by skipping them; deselect them on
purpose with ``pytest -m "not vllm"``.

The tiny models are built once into $PLAYGROUND_TEST_MODELS (default
~/.cache/playground-test-models) by ``playground_tools.tiny_models`` run with the vLLM
venv's Python.
Three servers (base, chat, and a spare chat server for the test that kills one) start
concurrently once for this package and are stopped, with every process they spawned, when
pytest leaves it. Server logs go to test-artifacts/vllm/{base,chat,doomed}.log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from app.config import ModelConfig, ModelKind, ModelsFile

REPO = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get("VLLM_VENV", REPO / ".venv-vllm"))
VLLM_PYTHON = VLLM_VENV / "bin" / "python"
VLLM_STAMP = VLLM_VENV / ".vllm-installed"
MODELS_CACHE = Path(
    os.environ.get("PLAYGROUND_TEST_MODELS", Path.home() / ".cache" / "playground-test-models")
)
LOG_DIR = REPO / "test-artifacts" / "vllm"
STARTUP_TIMEOUT = float(os.environ.get("VLLM_STARTUP_TIMEOUT", "180"))
MAX_MODEL_LEN = 512
LOG_TAIL_LINES = 50
HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (also when pyproject.toml does not list it)."""
    config.addinivalue_line(
        "markers", "vllm: runs against real vLLM servers (scripts/setup-vllm.sh)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this directory `vllm`, before `-m` selection looks at markers."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.vllm)


def _own_group_and_die_with_parent() -> None:
    """In the child: a process group of its own, and SIGTERM if pytest dies without cleanup."""
    os.setsid()
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class VllmServer:
    """One `vllm.entrypoints.openai.api_server` child process serving one model."""

    label: str
    model_dir: Path
    served_name: str
    max_model_len: int = MAX_MODEL_LEN
    port: int = field(default_factory=free_port)
    # More vLLM options (say, --enable-lora with its adapters).
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def root_url(self) -> str:
        """Where /health, /tokenize and /detokenize live."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, as the models file wants it."""
        return f"{self.root_url}/v1"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout and stderr."""
        return LOG_DIR / f"{self.label}.log"

    def start(self) -> None:
        """Launch the server in its own process group (so it can be killed with its children)."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the default is far more than tiny models need
            # Several servers share two cores: let the OS place threads instead of pinning
            # every server to the same core.
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            # Run the model in the engine process instead of one more worker process that must
            # import torch and vLLM all over again (about 20 s of every start).
            "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "HF_HUB_OFFLINE": "1",  # never try to reach a model hub
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        command = [
            str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_name,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--max-model-len", str(self.max_model_len),
            # torch.compile takes minutes on CPU (its cache does not reload in this build);
            # eager mode is fast enough for tiny models.
            "--enforce-eager",
            "--distributed-executor-backend", "uni",
            "--disable-log-stats",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_own_group_and_die_with_parent,
        )

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> float:
        """Wait for GET /health to answer 200; returns seconds waited; fails with the log."""
        assert self.process is not None, "server not started"
        started = time.monotonic()
        deadline = started + timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"vLLM server {self.label} exited with code "
                        f"{self.process.returncode} while starting\n{self.log_tail()}"
                    )
                try:
                    if http.get(f"{self.root_url}/health").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"vLLM server {self.label} not healthy after {timeout:.0f} s\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after a grace period."""
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(20)
        # The engine-core children may outlive the API process: make sure none remain.
        self._signal_group(signal.SIGKILL)
        self.process.wait(10)
        if self._log is not None:
            self._log.close()

    def live_processes(self) -> list[int]:
        """Pids of the server's process group that are still running (zombies do not count)."""
        assert self.process is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            state, pgid = fields[0], int(fields[2])
            if pgid == self.process.pid and state not in ("Z", "X"):
                pids.append(int(stat.parent.name))
        return pids

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):  # the group is already gone
            os.killpg(self.process.pid, sig)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server log, for failure messages."""
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"


def start_servers(servers: list[VllmServer]) -> None:
    """Start servers side by side and wait until all are healthy (stopping all on failure)."""
    for server in servers:
        server.start()
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            waited = list(pool.map(lambda s: s.wait_healthy(), servers))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    for server, seconds in zip(servers, waited, strict=True):
        print(f"vLLM {server.label} healthy after {seconds:.1f} s on :{server.port}")


@pytest.fixture(scope="package")
def vllm_python() -> Path:
    """The vLLM virtualenv's Python; fails (never skips) when scripts/setup-vllm.sh was not run."""
    if not VLLM_PYTHON.exists() or not VLLM_STAMP.exists():
        pytest.fail(
            f"no complete vLLM virtualenv at {VLLM_VENV}: run `bash scripts/setup-vllm.sh` "
            "(or deselect these tests with -m 'not vllm')"
        )
    return VLLM_PYTHON


@dataclass(frozen=True)
class TinyModels:
    """Where the tiny base and chat models, and the base model's LoRA adapter, are."""

    base: Path
    chat: Path
    lora: Path


@pytest.fixture(scope="package")
def tiny_models(vllm_python: Path) -> TinyModels:
    """Build (once, cached across runs) the tiny base and chat models and the LoRA adapter."""
    result = subprocess.run(
        [str(vllm_python), "-m", "playground_tools.tiny_models", str(MODELS_CACHE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"building the tiny models failed:\n{result.stdout}\n{result.stderr}")
    print(result.stdout.strip())
    return TinyModels(
        base=MODELS_CACHE / "tiny-base",
        chat=MODELS_CACHE / "tiny-chat",
        lora=MODELS_CACHE / "tiny-lora",
    )


@dataclass(frozen=True)
class RealServers:
    """The running servers: base, chat, and a spare chat server that a test may kill."""

    base: VllmServer
    chat: VllmServer
    doomed: VllmServer

    def all(self) -> list[VllmServer]:
        """Every server."""
        return [self.base, self.chat, self.doomed]


@pytest.fixture(scope="package")
def real_servers(tiny_models: TinyModels) -> Iterator[RealServers]:
    """Real vLLM servers for the tiny models, started together once for the package.

    The spare chat server starts with the others, since starts overlap far better than they
    queue; the one test that kills it is its only user.
    """
    servers = RealServers(
        base=VllmServer("base", tiny_models.base, "tiny-base"),
        chat=VllmServer("chat", tiny_models.chat, "tiny-chat"),
        doomed=VllmServer("doomed", tiny_models.chat, "tiny-chat"),
    )
    started = time.monotonic()
    start_servers(servers.all())
    print(f"vLLM servers ready after {time.monotonic() - started:.1f} s")
    try:
        yield servers
    finally:
        for server in servers.all():
            server.stop()
    # SIGKILLed children are gone once reaped; anything still running now would be an orphan.
    deadline = time.monotonic() + 10
    while (left := [pid for s in servers.all() for pid in s.live_processes()]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert not left, f"vLLM processes left running after the tests: {left}"


def model_configs(servers: RealServers) -> list[ModelConfig]:
    """The base and chat models as the models file would list them."""
    return [
        ModelConfig(name="base", kind=ModelKind.BASE, url=servers.base.base_url, model="tiny-base"),
        ModelConfig(name="chat", kind=ModelKind.CHAT, url=servers.chat.base_url, model="tiny-chat"),
    ]


@pytest.fixture
def real_models(real_servers: RealServers) -> ModelsFile:
    """Base and chat models served by real vLLM."""
    return ModelsFile(models=model_configs(real_servers))


@pytest.fixture
def models(real_models: ModelsFile) -> ModelsFile:
    """Here the shared `app` and `client` fixtures (tests/conftest.py) talk to real vLLM."""
    return real_models
