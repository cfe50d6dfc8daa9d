"""The web console in a real browser: Debian's Chromium, driven by Playwright, against one real ``reelgate serve``
(API, worker and dispatcher) on loopback, with an operator made by ``reelgate admins create``.

One server and one browser for the module; each test opens its own browser context (its own cookies). Every page a
test opens is screenshotted under its tmp_path, checked for console errors (a style or script the CSP refused
shows as one), and the main pages are checked with axe-core (no serious or critical violation: labels, contrast,
names). Tasks and elements are made through the public API beforehand: images and a video sent inline (the gallery
shows the frontal image, or the video's middle frame), and a task whose image cannot be fetched, so it fails, with
a callback URL whose receiver answers 500 until the console resends it."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes import mediagen
from fakes.receiver import Receiver
from harness import b64_jpeg, image_body
from procs import BIN, Proc, create_key, free_port, reelgate_env, serve

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright's own browser builds are never downloaded
PASSWORD = "a long console password"
MAIN_PAGES = ("/console/", "/console/accounts", "/console/tasks", "/console/elements", "/console/channels",
              "/console/audit")  # fmt: skip


@dataclass
class Site:
    url: str
    env: dict[str, str]
    key: str
    failed_task: str
    receiver: Receiver
    elements: int
    browser: Any = None
    errors: list[str] = field(default_factory=list)


def _chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("REELGATE_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"{CHROMIUM} is missing; REELGATE_REQUIRE_BROWSER=1 forbids skipping (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); .ci/run installs it")
    return CHROMIUM


def _wait_done(client: httpx.Client, key: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {key}"}).json()
        if task["status"] in ("completed", "failed"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def _populate(url: str, key: str, receiver: Receiver) -> tuple[str, int]:
    """Two image elements, one video element, and a failed task with a callback; the failed task's id."""
    clip = "data:video/mp4;base64," + base64.b64encode(mediagen.mp4(720, 720, seconds=3, fps=2)).decode()
    video = {"model": "kling-custom-element", "model_params": {
        "element_name": "Clip", "element_description": "from a video", "reference_type": "video_refer",
        "element_video_list": {"video_url": clip}}}  # fmt: skip
    small = [b64_jpeg(scene, 360, 480) for scene in range(1, 5)]
    bodies = [image_body(small[0], small[1]), image_body(small[2], small[3]), video]
    unreachable = f"http://127.0.0.1:{free_port()}/gone.jpg"
    failing = {**image_body(unreachable, unreachable), "callback_url": receiver.url()}
    with httpx.Client(base_url=url, timeout=30) as client:
        ids = [client.post("/v1/videos/generations", json=b, headers={"Authorization": f"Bearer {key}"}).json()["id"]
               for b in [*bodies, failing]]  # fmt: skip
        finished = [_wait_done(client, key, task_id) for task_id in ids]
    assert [t["status"] for t in finished] == ["completed"] * 3 + ["failed"], finished
    receiver.wait_for(3)  # the first attempt and its two retries, each answered 500: the delivery is dead
    return ids[-1], 3


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    chromium = _chromium()
    root = tmp_path_factory.mktemp("console")
    db = root / "reelgate.db"
    db.write_bytes(sqlite_template.read_bytes())
    env = reelgate_env(root / "data", f"sqlite:///{db}", REELGATE_CALLBACK_RETRY_DELAYS="0.05,0.05")
    # The operator (through the command, as an operator makes one) and the account with a key, side by side.
    admin = subprocess.Popen([str(BIN), "admins", "create", "ops", "--password-stdin"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)  # fmt: skip
    key = create_key(env, "acme", credits=100)
    out, err = admin.communicate(PASSWORD + "\n", timeout=60)
    assert admin.returncode == 0 and "created operator 'ops'" in out, err
    with Receiver(default=500) as receiver:
        yield from _serve(env, root, receiver, chromium, key)


def _serve(env: dict[str, str], root: Path, receiver: Receiver, chromium: Path, key: str) -> Iterator[Site]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server: Proc = serve(env, port, root / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        failed, elements = _populate(url, key, receiver)
        with sync_playwright() as playwright:
            # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
            browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
            try:
                yield Site(url, env, key, failed, receiver, elements, browser)
            finally:
                browser.close()
    finally:
        server.kill()


class Visit:
    """One browser context (its own cookies) on the site: pages opened are screenshotted and watched for errors."""

    def __init__(self, site: Site, shots: Path) -> None:
        self.site, self.shots = site, shots
        self.context = site.browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.route("**/*", self._only_this_server)

    def _only_this_server(self, route: Any) -> None:
        if route.request.url.startswith(self.site.url):
            route.continue_()
        else:
            self.errors.append(f"asked outside the server: {route.request.url}")
            route.abort()

    def open(self, path: str, shot: str) -> Any:
        response = self.page.goto(self.site.url + path)
        self.shot(shot)
        return response

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def sign_in(self) -> None:
        self.open("/console/sign-in", "sign-in")
        self.page.get_by_label("Username").fill("ops")
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.site.url}/console/")

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors


@pytest.fixture
def visit(site: Site, tmp_path: Path) -> Iterator[Visit]:
    v = Visit(site, tmp_path)
    try:
        yield v
    finally:
        v.close()


def serious_violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in found
            if v["impact"] in ("serious", "critical")]  # fmt: skip


def test_keyboard_sign_in_then_every_main_page_passes_axe(visit: Visit) -> None:
    visit.open("/console/", "redirected-to-sign-in")
    page = visit.page
    assert "/console/sign-in" in page.url
    assert serious_violations(page) == []
    page.get_by_role("heading", name="Sign in").click()  # Tab on from the heading, past the autofocus
    focused = []
    for _ in range(3):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert focused == ["username", "password", "Sign in"], focused
    page.locator("#username").focus()
    page.keyboard.type("ops")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{visit.site.url}/console/")
    for path in MAIN_PAGES:
        visit.open(path, path.strip("/").replace("/", "-") or "overview")
        assert serious_violations(page) == [], path
    visit.open("/console/", "overview")
    assert page.locator("svg.chart rect").count() >= 1
    assert page.locator(".stat", has_text="dead callbacks").locator(".value").inner_text() == "1"


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(visit: Visit) -> None:
    visit.sign_in()
    before = visit.context.request.get(f"{visit.site.url}/console/account?name=acme").text()
    for data in ({"account": "acme", "credits": "7"}, {"account": "acme", "credits": "7", "csrf": "forged"}):
        refused = visit.context.request.post(f"{visit.site.url}/console/account/grant", form=data)
        assert refused.status == 403 and "CSRF" in refused.text()
    after = visit.context.request.get(f"{visit.site.url}/console/account?name=acme").text()
    assert before.count("granted by") == after.count("granted by")  # nothing was granted


def test_grant_credits_then_create_and_revoke_a_key(visit: Visit) -> None:
    visit.sign_in()
    page = visit.page
    visit.open("/console/accounts", "accounts")
    page.get_by_role("link", name="acme").click()
    available = float(page.locator("#available").inner_text().replace(",", ""))
    page.get_by_label("Credits", exact=True).fill("12.5")
    page.get_by_label("Note (in the ledger)").fill("browser grant")
    page.get_by_role("button", name="Grant").click()
    page.get_by_text("Granted 12.5 credits to acme.").wait_for()
    assert float(page.locator("#available").inner_text().replace(",", "")) == available + 12.5
    visit.shot("account-granted")
    page.get_by_label("Label for a new key").fill("from the console")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    visit.shot("account-new-key")
    assert httpx.get(f"{visit.site.url}/v1/credits", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    visit.open("/console/account?name=acme", "account")
    assert key not in page.content()
    page.get_by_text("Active · revoke…").last.click()
    page.get_by_role("button", name=f"Revoke {key[:10]}").click()
    page.get_by_text(f"Revoked key {key[:10]}.").wait_for()
    visit.shot("account-revoked")
    deadline = time.monotonic() + 5  # each process forgets a key within the key cache's TTL (1 s)
    while httpx.get(f"{visit.site.url}/v1/credits", headers={"Authorization": f"Bearer {key}"}).status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)
    visit.open("/console/audit", "audit")
    for action in ("grant credits", "create key", "revoke key"):
        assert page.get_by_role("cell", name=action, exact=True).count() >= 1, action


def test_find_the_failed_task_and_resend_its_dead_callback(visit: Visit) -> None:
    visit.sign_in()
    page = visit.page
    visit.site.receiver.default = 200  # the tenant's receiver is fixed
    visit.open("/console/tasks", "tasks")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=visit.site.failed_task).click()
    assert page.locator("#delivery-status").inner_text() == "dead"
    assert page.get_by_text("callback attempt 3").count() == 1
    assert page.get_by_role("heading", name="Timeline").is_visible()
    visit.shot("task-failed")
    assert serious_violations(page) == []
    page.get_by_role("button", name="Resend callback").click()
    page.get_by_text("Callback queued again").wait_for()
    received = visit.site.receiver.wait_for(4)
    assert visit.site.failed_task in received[-1].body.decode()
    deadline = time.monotonic() + 10
    while page.locator("#delivery-status").inner_text() != "delivered":
        assert time.monotonic() < deadline, "the resent callback was not recorded as delivered"
        time.sleep(0.2)
        page.reload()
    visit.shot("task-resent")


def test_the_gallery_renders_every_thumbnail(visit: Visit) -> None:
    visit.sign_in()
    page = visit.page
    visit.open("/console/elements", "elements")
    images = page.locator(".gallery img")
    assert images.count() == visit.site.elements
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        images.nth(i).evaluate("img => img.complete || new Promise(done => img.addEventListener('load', done))")
        assert images.nth(i).evaluate("img => img.naturalWidth") > 0, images.nth(i).get_attribute("src")
    page.get_by_role("link", name="Clip").click()
    assert page.locator("video").count() == 1
    visit.shot("element-video")
    assert serious_violations(page) == []
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: wide tables scroll inside their box
    for path in ("/console/elements", "/console/", f"/console/tasks/{visit.site.failed_task}"):
        visit.open(path, "phone-" + (path.strip("/").split("/")[-1] or "overview"))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
