"""``/docs`` in a real headless browser: Debian's Chromium, driven by Playwright, loads the page from a real
``reelgate serve`` on loopback. The reference renders its operations and their schemas, logs no console error, and
asks for nothing outside this server (every other request fails the test and is never sent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from procs import free_port, reelgate_env, serve

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright's own browser builds are never downloaded


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("REELGATE_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"{CHROMIUM} is missing; REELGATE_REQUIRE_BROWSER=1 forbids skipping (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); .ci/run installs it")
    return CHROMIUM


@pytest.fixture
def docs_server(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    db = tmp_path / "reelgate.db"
    db.write_bytes(sqlite_template.read_bytes())
    port = free_port()
    server = serve(reelgate_env(tmp_path / "data", f"sqlite:///{db}"), port, tmp_path / "serve.log", "--no-tasks")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()


def test_docs_render_every_operation_from_this_server_alone(chromium: Path, docs_server: str) -> None:
    from playwright.sync_api import Route, sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    asked: list[str] = []
    cache_control: dict[str, str] = {}

    def only_loopback(route: Route) -> None:
        url = route.request.url
        asked.append(url)
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: cache_control.__setitem__(urlsplit(r.url).path,
                                                                   r.headers.get("cache-control", "")))  # fmt: skip
            page.route("**/*", only_loopback)
            page.goto(f"{docs_server}/docs")
            submit = page.locator("#operations-Tasks-createTask")
            submit.wait_for(timeout=15_000)
            for op in ("listTasks", "getTask", "cancelTask", "getTaskCallbacks"):
                assert page.locator(f"#operations-Tasks-{op}").count() == 1, op
            for tag, op in (("Elements", "deleteElement"), ("Models", "listModels"), ("Account", "getCredits"),
                            ("Webhooks", "rotateWebhookSecret")):  # fmt: skip
                assert page.locator(f"#operations-{tag}-{op}").count() == 1, op
            assert "Submit a generation task" in submit.inner_text()
            submit.locator(".opblock-summary").click()
            body = submit.locator(".opblock-body")
            body.wait_for(timeout=5_000)
            # The request body: its example (the vendor page's own), and the schema behind it.
            assert "My Character" in body.inner_text()
            body.get_by_role("tab", name="Schema").first.click()
            page.get_by_text("SubmitRequest").first.wait_for(timeout=5_000)
            assert page.locator("#operations-Tasks-createTask .model-box").count() >= 1
        finally:
            browser.close()

    assert errors == [], errors
    assert outside == [], outside
    assets = [path for path in cache_control if path.startswith("/docs/assets/")]
    assert {Path(p).name for p in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}, asked
    assert all("max-age=31536000" in cache_control[p] and "immutable" in cache_control[p] for p in assets)
