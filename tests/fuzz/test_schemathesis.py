"""Schemathesis against a real ``reelgate serve`` and its own OpenAPI document, with the create → get → cancel
links: no 5xx, every answer (errors included) matching the documented schema and status codes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from procs import create_key, free_port, reelgate_env, serve

# positive_data_acceptance is left out on purpose: a JSON schema cannot say "this Base64 decodes to a JPEG of
# at least 300 px" or "this host is public", so schema-valid bodies are rightly refused by those rules.
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,negative_data_rejection,unsupported_method")  # fmt: skip


def test_fuzz_the_api_against_its_openapi_document(tmp_path: Path) -> None:
    env = reelgate_env(tmp_path / "data", f"sqlite:///{tmp_path / 'fuzz.db'}", REELGATE_RATE_LIMIT_PER_MINUTE="0",
                       REELGATE_ALLOW_PRIVATE_NETWORKS="0")  # fmt: skip
    key = create_key(env, credits=100_000)
    port = free_port()
    server = serve(env, port, tmp_path / "serve.log")
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", f"http://127.0.0.1:{port}/openapi.json",
             "-H", f"Authorization: Bearer {key}", "--checks", CHECKS, "-n", "40", "--seed", "7",
             "--generation-deterministic"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        server.kill()
    counted = re.search(r"(\d+) generated", done.stdout)
    print(f"schemathesis: {counted.group(0) if counted else 'no count'}")
    assert done.returncode == 0, done.stdout[-6000:]
    assert "Stateful" in done.stdout
    assert "Internal Server Error" not in (tmp_path / "serve.log").read_text()
