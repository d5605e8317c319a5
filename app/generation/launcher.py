"""Launch one vLLM OpenAI-compatible server per model as child processes, and stop them all.

vLLM lives in its own virtualenv (scripts/setup-vllm.sh); the app only runs its Python.
Servers start one after the other, because vLLM sizes its KV cache from the memory that is free
when it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.config import ConfigError, ModelConfig, ModelKind, ModelsFile
from app.generation import lora

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
LOG_TAIL_LINES = 30
# Of each GPU, what the launched models may use together (vLLM's own default is 0.9 for one).
GPU_MEMORY_BUDGET = 0.9

Progress = Callable[[str], None]


class LaunchError(Exception):
    """A model server could not be started; the message includes its last log lines."""


def has_cuda_gpu() -> bool:
    """True when an NVIDIA GPU answers nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        result = subprocess.run([smi, "-L"], capture_output=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and b"GPU" in result.stdout


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except FileNotFoundError:
        return "(no log)"


def cpu_shares(servers: int) -> list[list[int] | None]:
    """Disjoint sets of this process's cores, one per CPU server (None each when too few)."""
    cores = sorted(os.sched_getaffinity(0))
    per = len(cores) // servers if servers else 0
    if per == 0:
        return [None] * servers
    return [cores[i * per : (i + 1) * per] for i in range(servers)]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the playground dies without cleaning up (Linux only)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ServerProcess:
    """One launched vLLM server."""

    model: ModelConfig
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        """Its OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def exit_message(self) -> str | None:
        """None while running; otherwise why it stopped, with its last log lines."""
        code = self.process.poll()
        if code is None:
            return None
        return f"vLLM server for {self.model.name} exited with code {code}:\n{tail(self.log_path)}"


@dataclass(frozen=True)
class LoraPlan:
    """A launched model's LoRA setup: the adapters it serves and the rank vLLM must allow."""

    adapters: tuple[ModelConfig, ...] = ()
    max_rank: int | None = None


@dataclass
class LaunchSettings:
    """How to launch servers: which Python has vLLM, where logs go, how long to wait."""

    vllm_python: Path
    log_dir: Path
    startup_timeout: float = 1800.0
    cpu_kv_cache_gib: int = 1
    gpu: bool | None = None


def needs_request_chat_templates(model: ModelConfig, adapters: Sequence[ModelConfig]) -> bool:
    """Whether the server must accept the `chat_template` the playground sends with requests.

    A `chat_template` set in the models file travels with every chat request; vLLM refuses
    such requests unless started with --trust-request-chat-template. An adapter's chat
    requests go to its parent's server, whose own tokenizer may have no template at all.
    """
    flag = "--trust-request-chat-template"
    if flag in model.vllm_args:
        return False
    return any(m.kind is ModelKind.CHAT and m.chat_template for m in (model, *adapters))


class LocalServers:
    """The vLLM servers this playground process started; stops them all on close()."""

    def __init__(self, settings: LaunchSettings, progress: Progress = print) -> None:
        self.settings = settings
        self.progress = progress
        self.servers: list[ServerProcess] = []
        # Whether the servers were launched for a GPU (known once start() has run).
        self.gpu: bool | None = None
        self._lock = threading.Lock()

    def start(self, models: ModelsFile) -> ModelsFile:
        """Launch every model without a url, one after the other; return the file with urls."""
        to_launch = [m for m in models.models if m.launched]
        if not to_launch:
            return models
        python = self.settings.vllm_python
        if not python.exists():
            raise ConfigError(
                f"models {', '.join(m.name for m in to_launch)} need vLLM, but {python} does not "
                "exist: run `bash scripts/setup-vllm.sh` (or `make vllm`) first"
            )
        # Adapter ranks are read before anything starts: a bad adapter fails at once.
        plans = {m.name: self.lora_plan(m, models) for m in to_launch}
        gpu = has_cuda_gpu() if self.settings.gpu is None else self.settings.gpu
        self.gpu = gpu
        share = round(GPU_MEMORY_BUDGET / len(to_launch), 3)
        cores = cpu_shares(len(to_launch))
        launched: dict[str, str] = {}
        try:
            for model, own_cores in zip(to_launch, cores, strict=True):
                server = self._spawn(model, gpu, share, own_cores, plans[model.name])
                self._wait_healthy(server)
                launched[model.name] = server.url
        except BaseException:
            self.close()
            raise
        return ModelsFile(
            models=[
                m.model_copy(update={"url": launched[m.name]}) if m.name in launched else m
                for m in models.models
            ]
        )

    def cpu_server_urls(self) -> set[str]:
        """The servers launched without a GPU (their LoRA batches need isolating)."""
        return set() if self.gpu else {server.url for server in self.servers}

    def lora_plan(self, model: ModelConfig, models: ModelsFile) -> LoraPlan:
        """The adapters a launched model serves, and --max-lora-rank for them."""
        adapters = models.adapters_of(model.name)
        if not lora.lora_enabled(model, adapters):
            return LoraPlan()
        return LoraPlan(adapters, lora.max_lora_rank(model, adapters, self.settings.vllm_python))

    def command(
        self,
        model: ModelConfig,
        port: int,
        gpu: bool,
        share: float,
        plan: LoraPlan | None = None,
    ) -> list[str]:
        """The vLLM command line for one model (with its adapters, if any)."""
        assert model.source is not None
        args = [str(self.settings.vllm_python), "-m", "vllm.entrypoints.openai.api_server"]
        args += ["--model", model.source, "--served-model-name", model.model]
        args += ["--host", "127.0.0.1", "--port", str(port)]
        if model.revision:
            args += ["--revision", model.revision]
        if model.max_model_len:
            args += ["--max-model-len", str(model.max_model_len)]
        if model.dtype:
            args += ["--dtype", model.dtype]
        if gpu:
            args += ["--gpu-memory-utilization", str(model.gpu_memory_utilization or share)]
        if model.api_key:
            args += ["--api-key", model.api_key]
        if not gpu and "--enforce-eager" not in model.vllm_args:
            # The CPU build spends minutes in torch.compile at every start (its compile cache does
            # not reload); eager mode starts in seconds and is what the CPU path is for.
            args += ["--enforce-eager"]
        plan = plan or LoraPlan()
        args += lora.lora_args(model, plan.adapters, plan.max_rank)
        if needs_request_chat_templates(model, plan.adapters):
            args += ["--trust-request-chat-template"]
        return args + list(model.vllm_args)

    def _spawn(
        self,
        model: ModelConfig,
        gpu: bool,
        share: float,
        cores: list[int] | None = None,
        plan: LoraPlan | None = None,
    ) -> ServerProcess:
        port = free_port()
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.settings.log_dir / f"vllm-{model.name.replace('/', '_')}.log"
        env = dict(os.environ)
        if not gpu:
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.settings.cpu_kv_cache_gib))
            # Each server gets its own cores: two servers whose OpenMP threads spin on the same
            # cores slow each other down many times over (seen: 0.1 s vs 3 s for one answer).
            # With fewer cores than servers, one thread each and the OS decides.
            if cores:
                env.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(map(str, cores)))
            else:
                env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
                env.setdefault("OMP_NUM_THREADS", "1")
            # Run the model in the server process: one fewer process importing torch (~20 s).
            env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        command = self.command(model, port, gpu, share, plan)
        if lora.lora_enabled(model, plan.adapters if plan else ()):
            # Lets the playground add adapters to this server while it runs.
            env.setdefault(lora.RUNTIME_UPDATING_ENV, "True")
        self.progress(
            f"starting vLLM for {model.name} ({model.source}) on port {port}; log: {log_path}"
        )
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 (our own command line, no shell)
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
            )
        server = ServerProcess(model, port, log_path, process)
        with self._lock:
            self.servers.append(server)
        return server

    def _wait_healthy(self, server: ServerProcess) -> None:
        """Poll /health, showing progress, until ready; raise with the log if it dies."""
        deadline = server.started_at + self.settings.startup_timeout
        last_shown = 0.0
        health = server.url.removesuffix("/v1") + "/health"
        while True:
            message = server.exit_message()
            if message is not None:
                raise LaunchError(message)
            try:
                if httpx.get(health, timeout=2).status_code == 200:
                    elapsed = time.monotonic() - server.started_at
                    self.progress(f"{server.model.name} is ready ({elapsed:.0f} s)")
                    return
            except httpx.HTTPError:
                pass
            now = time.monotonic()
            if now > deadline:
                raise LaunchError(
                    f"vLLM server for {server.model.name} was not healthy after "
                    f"{self.settings.startup_timeout:.0f} s:\n{tail(server.log_path)}"
                )
            if now - last_shown >= 5:
                last_line = tail(server.log_path, 1).strip()[:160]
                self.progress(
                    f"  loading {server.model.name}… {now - server.started_at:.0f} s  {last_line}"
                )
                last_shown = now
            time.sleep(0.5)

    def watch(self, report: Progress, interval: float = 2.0) -> None:
        """In a daemon thread, report each server that dies (once), with its last log lines."""
        reported: set[str] = set()

        def loop() -> None:
            while True:
                for name, message in self.problems().items():
                    if name not in reported:
                        reported.add(name)
                        report(message)
                time.sleep(interval)

        threading.Thread(target=loop, name="vllm-watchdog", daemon=True).start()

    def problems(self) -> dict[str, str]:
        """Launched models whose server has died, with why."""
        with self._lock:
            servers = list(self.servers)
        return {s.model.name: m for s in servers if (m := s.exit_message()) is not None}

    def close(self, grace: float = 15.0) -> None:
        """Stop every server (SIGTERM to its process group, then SIGKILL), leaving no orphans."""
        with self._lock:
            servers, self.servers = self.servers, []
        for server in servers:
            _signal_group(server.process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for server in servers:
            try:
                server.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(server.process, signal.SIGKILL)
                server.process.wait(5)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's whole process group (vLLM starts worker processes of its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
