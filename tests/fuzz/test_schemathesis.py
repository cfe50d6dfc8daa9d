"""Schemathesis against a real ``reelgate serve`` and its own OpenAPI document, with the create → get → cancel
links, on SQLite and on PostgreSQL, with several seeds: no 5xx, every answer (errors included) matching the
documented schema and status codes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from procs import create_key, free_port, reelgate_env, serve

# positive_data_acceptance is left out on purpose: a JSON schema cannot say "this Base64 decodes to a JPEG of
# at least 300 px" or "this host is public", so schema-valid bodies are rightly refused by those rules.
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,negative_data_rejection,unsupported_method")  # fmt: skip
# Two seeds on each engine, about 20 s an engine on a 2-core machine. The first seed runs every phase; the
# examples and coverage phases do not depend on the seed, so later seeds run only fuzzing and stateful.
# REELGATE_FUZZ_SEEDS=1,2,3,... and REELGATE_FUZZ_EXAMPLES=200 explore further; a failure names its seed.
SEEDS = [int(s) for s in os.environ.get("REELGATE_FUZZ_SEEDS", "7,20240611").split(",")]
EXAMPLES = os.environ.get("REELGATE_FUZZ_EXAMPLES", "15")


def _schemathesis(port: int, key: str, seed: int, phases: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"http://127.0.0.1:{port}/openapi.json",
         "-H", f"Authorization: Bearer {key}", "--checks", CHECKS, "-n", EXAMPLES, "--seed", str(seed),
         "--phases", phases, "--no-shrink"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_fuzz_the_api_against_its_openapi_document(tmp_path: Path, db_url: str) -> None:
    env = reelgate_env(tmp_path / "data", db_url, REELGATE_RATE_LIMIT_PER_MINUTE="0",
                       REELGATE_ALLOW_PRIVATE_NETWORKS="0")  # fmt: skip
    key = create_key(env, credits=100_000)
    port = free_port()
    server = serve(env, port, tmp_path / "serve.log")
    try:
        for n, seed in enumerate(SEEDS):
            started = time.monotonic()
            done = _schemathesis(port, key, seed, "fuzzing,stateful" if n else "examples,coverage,fuzzing,stateful")
            counted = re.search(r"(\d+) generated", done.stdout)
            print(f"schemathesis seed {seed}: {counted.group(0) if counted else 'no count'} "
                  f"in {time.monotonic() - started:.1f} s")  # fmt: skip
            assert done.returncode == 0, f"seed {seed}:\n{done.stdout[-6000:]}"
            assert "Stateful" in done.stdout
    finally:
        server.kill()
    assert "Internal Server Error" not in (tmp_path / "serve.log").read_text()
