"""`playground serve --workers N` refuses SQLite with a message that says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.multiprocess.conftest import ROOT


def test_several_workers_on_sqlite_fail_with_a_clear_message(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        '[[models]]\nname = "base"\nkind = "base"\nurl = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PLAYGROUND_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--models", str(models), "--workers", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 2 needs PostgreSQL" in done.stderr
    assert "SQLite" in done.stderr
    assert not (tmp_path / "playground.db").exists()
