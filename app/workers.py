"""`playground serve --workers N`: N processes serving one port, sharing one PostgreSQL.

The parent binds the port, builds the app once and forks the workers; each runs its own
uvicorn server (with its own lifespan: engine, runner, heartbeat) on the inherited socket, so
the kernel spreads connections over them. Live streams and Stop cross workers through
PostgreSQL's LISTEN/NOTIFY (app.generation.fanout); SQLite, one file written by one process at
a time and with no such channel, is refused. A worker that dies is replaced; its unfinished
generations are marked interrupted once its heartbeat is stale.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
import time
from typing import Any

from app.config import ConfigError, Settings

log = logging.getLogger(__name__)

# uvicorn's exit code when the app's startup failed: such a worker is not replaced.
STARTUP_FAILURE = 3
# Nor are workers dying more than this often per worker within the window (a crash loop).
CRASHES_PER_WORKER = 3
CRASH_WINDOW_SECONDS = 60.0


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse settings that several workers cannot share; give them one signing key."""
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers == 1:
        return
    if not settings.resolved_database_url().startswith("postgresql"):
        raise ConfigError(
            f"--workers {workers} needs PostgreSQL (DATABASE_URL=postgresql://...): SQLite is "
            "one file that one process writes at a time, and workers share live streams and "
            "Stop through PostgreSQL's LISTEN/NOTIFY. Use --workers 1 with SQLite."
        )
    if settings.fanout == "off":
        raise ConfigError(
            f"--workers {workers} needs PLAYGROUND_FANOUT=auto: with it off, a browser sent to "
            "another worker would not see a running answer, and Stop would not reach it"
        )
    if not settings.secret_key:
        # Every worker must sign and check the CSRF tokens alike.
        settings.secret_key = secrets.token_hex(32)


def serve_workers(app: Any, host: str, port: int, workers: int, log_level: str) -> int:
    """Fork `workers` uvicorn servers on one listening socket and supervise them."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    children: dict[int, float] = {}
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    for _ in range(workers):
        spawn()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    deaths: list[float] = []
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if stopping or started is None:
            continue
        code = os.waitstatus_to_exitcode(status)
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < CRASH_WINDOW_SECONDS] + [now]
        if code == STARTUP_FAILURE or len(deaths) > workers * CRASHES_PER_WORKER:
            # It would only fail again (no database, a broken config): give up clearly.
            print(f"playground: worker {pid} failed ({code}); stopping", file=sys.stderr)
            failed = True
            stop(signal.SIGTERM, None)
        else:
            print(f"playground: worker {pid} exited ({code}); starting another", file=sys.stderr)
            spawn()
    sock.close()
    return 1 if failed else 0
