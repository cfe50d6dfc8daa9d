"""The command line starts without the server stack: user commands and --help never import what they do not use."""

from __future__ import annotations

import subprocess
import sys

SERVER_STACK = ("uvicorn", "uvloop", "alembic", "sqlalchemy", "asyncpg", "PIL", "av", "numpy", "reelgate.runtime",
                "reelgate.store.migrate", "reelgate.cli.demo")  # fmt: skip


def test_importing_the_cli_leaves_the_server_stack_unloaded() -> None:
    probe = f"import sys, reelgate.cli\nprint(','.join(m for m in {SERVER_STACK!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "", f"loaded at start-up: {done.stdout.strip()}"
