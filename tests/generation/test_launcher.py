"""The vLLM launcher's process handling, with a stand-in "vLLM python" that runs the fake server."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.config import ConfigError, ModelConfig, ModelKind, ModelsFile
from app.generation import launcher
from app.generation.launcher import LaunchError, LaunchSettings, LocalServers, cpu_shares

# Behaves like `python -m vllm.entrypoints.openai.api_server ARGS` (the flags the launcher passes),
# but serves the fake; FAKE_VLLM_MODE: crash at start, or die once FAKE_VLLM_DIE_FILE exists.
SHIM = """#!{python}
import os, sys, threading, time
args = sys.argv[3:]
opts = dict(zip(args[::2], args[1::2]))
bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND"), os.environ.get("OMP_NUM_THREADS")
open(os.environ["FAKE_VLLM_ARGS_LOG"], "a").write(" ".join(sys.argv[1:]) + f" BIND={{bind}}\\n")
mode = os.environ.get("FAKE_VLLM_MODE", "")
print("INFO loading weights for", opts["--model"], flush=True)
if mode == "crash":
    print("ValueError: Unsupported CPU attention configuration", flush=True)
    sys.exit(3)
def die_when_told():
    while not os.path.exists(os.environ["FAKE_VLLM_DIE_FILE"]):
        time.sleep(0.05)
    os._exit(7)
if mode == "die-later":
    threading.Thread(target=die_when_told, daemon=True).start()
from playground_tools import fake_vllm
fake_vllm.main(["--port", opts["--port"], "--served-model-name", opts["--served-model-name"]])
"""


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable that stands in for vLLM's Python."""
    path = tmp_path / "python"
    path.write_text(SHIM.format(python=sys.executable))
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_VLLM_ARGS_LOG", str(tmp_path / "args.log"))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    return path


def launch_file(*names: str) -> ModelsFile:
    """Models that have a source and no url: the playground must launch them."""
    kinds = [ModelKind.BASE, ModelKind.CHAT]
    return ModelsFile(
        models=[
            ModelConfig(name=n, kind=kinds[i % 2], source=f"/models/{n}", max_model_len=512)
            for i, n in enumerate(names)
        ]
    )


def servers_for(shim: Path, tmp_path: Path, lines: list[str]) -> LocalServers:
    settings = LaunchSettings(vllm_python=shim, log_dir=tmp_path / "logs", startup_timeout=30)
    return LocalServers(settings, progress=lines.append)


def test_launches_each_model_in_turn_and_fills_in_its_url(shim: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    servers = servers_for(shim, tmp_path, lines)
    try:
        models = servers.start(launch_file("base", "chat"))
        for model in models.models:
            assert model.url is not None
            listed = httpx.get(model.url + "/models").json()["data"][0]["id"]
            assert listed == model.model == model.source
        assert [line for line in lines if line.endswith(")") and "is ready" in line]
        assert any("starting vLLM for base" in line for line in lines)
        logged = (tmp_path / "args.log").read_text().splitlines()
        assert len(logged) == 2 and "--model /models/base" in logged[0]
        assert "--max-model-len 512" in logged[0] and "--model /models/chat" in logged[1]
        assert "--gpu-memory-utilization" not in logged[0]  # no GPU here
    finally:
        servers.close()


def test_close_leaves_no_process_behind(shim: Path, tmp_path: Path) -> None:
    servers = servers_for(shim, tmp_path, [])
    servers.start(launch_file("base"))
    pids = [s.process.pid for s in servers.servers]
    servers.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_models_with_a_url_are_not_launched(shim: Path, tmp_path: Path) -> None:
    given = ModelsFile(
        models=[ModelConfig(name="x", kind=ModelKind.BASE, url="http://h:1/v1", model="m")]
    )
    servers = servers_for(shim, tmp_path, [])
    assert servers.start(given) is given
    assert servers.servers == []


def test_a_server_that_fails_to_start_reports_its_log(
    shim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "crash")
    servers = servers_for(shim, tmp_path, [])
    with pytest.raises(LaunchError) as caught:
        servers.start(launch_file("base"))
    assert "exited with code 3" in str(caught.value)
    assert "Unsupported CPU attention configuration" in str(caught.value)
    assert servers.servers == []


def test_a_server_that_dies_later_is_reported_once(
    shim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_MODE", "die-later")
    die_file = tmp_path / "die-now"
    monkeypatch.setenv("FAKE_VLLM_DIE_FILE", str(die_file))
    servers = servers_for(shim, tmp_path, [])
    reports: list[str] = []
    try:
        servers.start(launch_file("base"))
        servers.watch(reports.append, interval=0.1)
        assert servers.problems() == {}
        die_file.touch()
        deadline = time.monotonic() + 10
        while not reports and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert len(reports) == 1 and "exited with code 7" in reports[0]
        assert "loading weights" in reports[0]
        assert set(servers.problems()) == {"base"}
    finally:
        servers.close()


def test_missing_vllm_is_a_clear_config_error(tmp_path: Path) -> None:
    settings = LaunchSettings(vllm_python=tmp_path / "nope" / "python", log_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"setup-vllm\.sh"):
        LocalServers(settings).start(launch_file("base"))


def test_gpu_memory_is_shared_between_launched_models(shim: Path, tmp_path: Path) -> None:
    servers = servers_for(shim, tmp_path, [])
    model = launch_file("base").models[0]
    command = servers.command(model, 1234, gpu=True, share=0.45)
    assert command[command.index("--gpu-memory-utilization") + 1] == "0.45"
    pinned = model.model_copy(update={"gpu_memory_utilization": 0.3, "vllm_args": ["--x", "1"]})
    command = servers.command(pinned, 1234, gpu=True, share=0.45)
    assert command[command.index("--gpu-memory-utilization") + 1] == "0.3"
    assert command[-2:] == ["--x", "1"]
    assert "--enforce-eager" not in command


def test_cpu_servers_run_eager_unless_told_otherwise(shim: Path, tmp_path: Path) -> None:
    servers = servers_for(shim, tmp_path, [])
    model = launch_file("base").models[0]
    command = servers.command(model, 1234, gpu=False, share=1.0)
    assert "--enforce-eager" in command
    assert "--gpu-memory-utilization" not in command
    own = model.model_copy(update={"vllm_args": ["--enforce-eager", "--seed", "3"]})
    command = servers.command(own, 1234, gpu=False, share=1.0)
    assert command.count("--enforce-eager") == 1


def test_cpu_servers_get_cores_of_their_own(
    shim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(launcher.os, "sched_getaffinity", lambda _pid: {4, 5, 6, 7, 8})
    settings = LaunchSettings(
        vllm_python=shim, log_dir=tmp_path / "logs", startup_timeout=30, gpu=False
    )
    servers = LocalServers(settings, progress=lambda _line: None)
    try:
        servers.start(launch_file("base", "chat"))
    finally:
        servers.close()
    logged = (tmp_path / "args.log").read_text().splitlines()
    assert [line.rsplit(" BIND=", 1)[1] for line in logged] == [
        "('4,5', None)",
        "('6,7', None)",
    ]


def test_fewer_cores_than_servers_means_one_unbound_thread_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(launcher.os, "sched_getaffinity", lambda _pid: {0})
    assert cpu_shares(2) == [None, None]
    monkeypatch.setattr(launcher.os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    assert cpu_shares(1) == [[0, 1, 2]]
    assert cpu_shares(3) == [[0], [1], [2]]


def test_a_users_own_binding_is_kept(
    shim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "nobind")
    settings = LaunchSettings(
        vllm_python=shim, log_dir=tmp_path / "logs", startup_timeout=30, gpu=False
    )
    servers = LocalServers(settings, progress=lambda _line: None)
    try:
        servers.start(launch_file("base"))
    finally:
        servers.close()
    assert (tmp_path / "args.log").read_text().rstrip().endswith("BIND=('nobind', None)")


def test_killing_the_playground_stops_its_servers(shim: Path, tmp_path: Path) -> None:
    """The children get SIGTERM when their parent dies without cleaning up (PR_SET_PDEATHSIG)."""
    import subprocess

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from app.generation.launcher import LaunchSettings, LocalServers\n"
        "from tests.generation.test_launcher import launch_file\n"
        "def print_(m): print(m, file=sys.stderr)\n"
        f"s = LocalServers(LaunchSettings(Path({str(shim)!r}), Path({str(tmp_path)!r})), print_)\n"
        "s.start(launch_file('base'))\n"
        "print(s.servers[0].process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the vLLM child outlived its killed parent")
