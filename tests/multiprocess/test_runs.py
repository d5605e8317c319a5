"""A batch run driven by process A is paused through process B: A stops feeding it and
cancels its answers in flight (the fan-out carries the stop to every process)."""

from __future__ import annotations

import time

import httpx
import psycopg

from tests.multiprocess.conftest import Cluster, needs_postgres

pytestmark = needs_postgres
HELD_TOKENS = 2
DEADLINE_SECONDS = 60.0


def _statuses(cluster: Cluster) -> dict[str, int]:
    with psycopg.connect(cluster.database_url) as conn:
        rows = conn.execute("SELECT status, count(*) FROM generations GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


def _wait_for(condition: str, check: object) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not (callable(check) and check()):
        assert time.monotonic() < deadline, f"never: {condition}"
        time.sleep(0.05)


def test_pausing_a_run_through_another_process_stops_its_driver(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    cluster.hold(HELD_TOKENS)
    sets = httpx.get(f"{a.url}/api/v1/prompt-sets").json()
    created = httpx.post(
        f"{a.url}/api/v1/runs",
        json={"prompt_set": sets[0]["id"], "models": ["base", "chat"]},
    )
    assert created.status_code == 201, created.text
    run = created.json()["id"]
    # A's driver has answers in flight, held at the fakes.
    _wait_for("answers in flight", lambda: _statuses(cluster).get("running", 0) > 0)
    paused = httpx.post(f"{b.url}/api/v1/runs/{run}/pause", json={})
    assert paused.status_code == 200, paused.text
    # A cancels what it had in flight (while the fakes still hold every stream), and starts
    # nothing new.
    _wait_for(
        "no answer in flight",
        lambda: not {"pending", "running"} & set(_statuses(cluster)),
    )
    assert _statuses(cluster).get("cancelled", 0) > 0
    assert httpx.get(f"{a.url}/api/v1/runs/{run}").json()["status"] == "paused"
