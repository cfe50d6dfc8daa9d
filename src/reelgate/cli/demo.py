"""``reelgate demo``: an in-process server on loopback, one sample element created through the public API, and the
server kept up, with its links and a key to try, until Ctrl-C.

Nothing is needed beyond this package: no network, no configuration, no API key. The server runs in a background
thread on a free 127.0.0.1 port with a temporary data directory, an account with credits is created through the
operator use case behind ``reelgate keys create``, two reference images are drawn with Pillow, and the element is
created with ``reelgate_client`` exactly as any user would.

The links printed (the element's images, ``/docs``) point at that server, so it stays up until Ctrl-C (or SIGTERM)
and only then stops and removes its data directory (unless ``--keep``). Not in a terminal (CI, a pipe) or with
``--no-wait`` it stops at once and says that its links are gone with it.

Video generation needs an upstream Kling channel (``REELGATE_KLING_*`` or the channels file,
``REELGATE_KLING_CONFIG``). Without one the demo says so and stops at the element, offline. With one, the element is
made upstream on that channel, then a short video uses it and is saved beside the pictures: the element-then-video
flow, billed by the upstream account.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

import typer
import uvicorn
from PIL import Image, ImageDraw
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from reelgate.config import Settings
from reelgate.operators import Operators
from reelgate.runtime import build_app
from reelgate.sealing import load_box
from reelgate.store.migrate import upgrade
from reelgate.store.sql import Store
from reelgate_client import Element, Reelgate, ReelgateError, Task, VideoTask

WIDTH, HEIGHT = 768, 1024
DEMO_CREDITS = 100  # an element (1) and a five-second 720p video without sound (about 27)
START_TIMEOUT = 20.0
LOCAL_WAIT, UPSTREAM_WAIT = 120.0, 1800.0  # the local engine takes seconds; Kling takes minutes
KLING_VARIABLES = ("REELGATE_KLING_CONFIG", "REELGATE_KLING_ACCESS_KEY", "REELGATE_KLING_API_KEY")
ELEMENT_MODEL, VIDEO_MODEL = "kling-custom-element", "kling-o3-text-to-video"
NO_CHANNEL = (
    "Video generation (kling-v3-* and kling-o3-* models, which use elements) needs an upstream Kling channel, and "
    "none is configured: set REELGATE_KLING_ACCESS_KEY and REELGATE_KLING_SECRET_KEY (or REELGATE_KLING_CONFIG, a "
    "channels file; see docs/kling.md), then run the demo again to see an element used in a video."
)
SKIN, HAIR, SHIRT, TROUSERS, SHOE = (240, 200, 170), (90, 55, 30), (200, 50, 50), (40, 60, 130), (40, 30, 30)


def run_demo(*, keep: bool = False, wait: bool = False) -> None:
    """Run the whole demo in a temporary data directory, keeping the server up until Ctrl-C when ``wait``; a failed
    step prints one error line and exits 1."""
    out = Console(soft_wrap=True)
    data_dir = Path(tempfile.mkdtemp(prefix="reelgate-demo-"))
    try:
        _demo(data_dir, out, keep, wait)
    except ReelgateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        if keep:
            Console(stderr=True).print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def kling_configured(env: Mapping[str, str]) -> bool:
    """Whether the environment names an upstream Kling channel (the provider itself validates it)."""
    return any(env.get(name) for name in KLING_VARIABLES)


def demo_settings(data_dir: Path, base_url: str, env: Mapping[str, str]) -> Settings:
    """The demo server's settings: offline, unless a Kling channel is configured, which then makes the element too
    (an element made by the local engine cannot be used upstream)."""
    settings = Settings(data_dir=data_dir, allow_private_networks=True, public_base_url=base_url, log_json=False)
    if not kling_configured(env):
        return settings
    return settings.with_changes(kling_config=env.get("REELGATE_KLING_CONFIG", ""), providers={ELEMENT_MODEL: "kling"})


def _demo(data_dir: Path, out: Console, keep: bool, wait: bool) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # bound now, so no other process can take the port
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    upstream = kling_configured(os.environ)
    settings = demo_settings(data_dir, base_url, os.environ)
    upgrade(settings.resolved_database_url)
    api_key = asyncio.run(_create_account(settings))
    front, side = draw_samples(data_dir)
    out.print(f"Reelgate demo: a server on {base_url} with a fresh account ({DEMO_CREDITS} credits).")
    if upstream:
        out.print("A Kling channel is configured: the element and the video are made upstream, on that account.")
    with _serving(settings, listener) as alive, Reelgate(api_key=api_key, base_url=base_url) as client:
        started = time.monotonic()
        task = client.elements.create(
            name="Demo Rover",
            description="A cheerful explorer in a red jumper, drawn from the front and side",
            frontal=front,
            refer=[side],
            tags=["o_102"],
        )
        out.print(f"submitted {task.id}: front.jpg and side.jpg sent as Base64 data URIs")
        done = _wait_with_bar(client, task, "element Demo Rover", UPSTREAM_WAIT if upstream else LOCAL_WAIT)
        element_id = done.result.element_id if done.result is not None else ""
        element = client.elements.retrieve(element_id)
        out.print(_panel(done, element))
        out.print(f"element_id {element_id} (created in {time.monotonic() - started:.2f} s)")
        if not upstream:
            out.print(NO_CHANNEL)
        elif _offers(client, VIDEO_MODEL):
            _video(client, element_id, data_dir, out)
        else:
            out.print(f"A Kling channel is configured, but this server does not offer {VIDEO_MODEL}.")
        if wait:
            pictures = [
                ("front picture", element.frontal_image or ""),
                *(("side picture", u) for u in element.refer_images),
            ]
            _serve_until_interrupted(out, base_url, api_key, pictures, alive)
    out.print("server stopped; the same calls work against `reelgate serve` with `reelgate element create ...`")
    if not wait:
        out.print("(its links above answered only while it ran; run `reelgate demo` in a terminal to keep it up)")
    if keep:
        out.print(f"to explore further: REELGATE_DATA_DIR={data_dir} reelgate serve; API key {api_key}")


def _serve_until_interrupted(
    out: Console, base_url: str, api_key: str, links: list[tuple[str, str]], alive: threading.Thread
) -> None:
    """Say that the server is up, its links whole (one a line, never folded) and how to try it, then block until
    Ctrl-C or SIGTERM (or the server ending)."""
    out.print(f"\nThe demo server is up at {base_url} until you press Ctrl-C:")
    for label, url in [("API reference", f"{base_url}/docs"), *links]:
        out.print(f"  {label:<14} {url}", highlight=False)
    out.print(f"  {'try it':<14} export REELGATE_BASE_URL={base_url} REELGATE_API_KEY={api_key}", highlight=False)
    out.print(f"  {'':<14} reelgate element list; reelgate task list; reelgate credits", highlight=False)
    out.print("Press Ctrl-C to stop it.")

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does: cleanly, data directory removed

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        while alive.is_alive():
            alive.join(0.5)
    except KeyboardInterrupt:
        out.print()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _offers(client: Reelgate, model: str) -> bool:
    return any(m.id == model and m.available for m in client.models.list())


def _video(client: Reelgate, element_id: str, data_dir: Path, out: Console) -> None:
    """The element used in a five-second video, waited for, then downloaded from Reelgate's storage."""
    started = time.monotonic()
    task = client.videos.create(
        model=VIDEO_MODEL,
        prompt="<<<element_1>>> waves hello, then walks towards the camera across a sunny meadow",
        elements=[element_id],
        duration=5,
        quality="720p",
        sound="off",
    )
    out.print(f"submitted {task.id}: {VIDEO_MODEL} with element {element_id} as <<<element_1>>>")
    done = VideoTask.from_task(_wait_with_bar(client, task, f"video {VIDEO_MODEL}", UPSTREAM_WAIT))
    saved = client.videos.download(done, data_dir / "demo.mp4")
    out.print(_video_panel(done, saved))
    out.print(f"video {done.video_url} (made in {time.monotonic() - started:.1f} s)")


def _video_panel(task: VideoTask, saved: Path) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    charged = task.usage.credits_charged if task.usage is not None else None
    rows = [
        ("task", task.id),
        ("status", f"{task.status} ({task.progress}%)"),
        ("credits charged", f"{charged:g}" if charged is not None else "-"),
        *(("result", url) for url in task.results),
        ("saved", f"{saved} ({saved.stat().st_size / 1e6:.1f} MB)"),
    ]
    for key, value in rows:
        grid.add_row(Text(key), Text(value))
    return Panel(grid, title=Text("video generated"), border_style="green", expand=False)


def _wait_with_bar(client: Reelgate, task: Task, label: str, timeout: float) -> Task:
    """``tasks.wait`` with a live progress bar on stderr."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(label, total=100, status=task.status)
        return client.tasks.wait(
            task, timeout=timeout, on_progress=lambda t: progress.update(bar, completed=t.progress, status=t.status)
        )


def _panel(task: Task, element: Element) -> Panel:
    """The finished task and its element, as any user of the API sees them."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    charged = task.usage.credits_charged if task.usage is not None else None
    rows = [
        ("task", task.id),
        ("status", f"{task.status} ({task.progress}%)"),
        ("credits charged", f"{charged:g}" if charged is not None else "-"),
        ("element_id", element.element_id),
        ("name", element.element_name),
        ("description", element.element_description),
        ("tags", ", ".join(element.tags)),
        ("frontal image", element.frontal_image or ""),
        *(("refer image", u) for u in element.refer_images),
    ]
    for key, value in rows:
        grid.add_row(Text(key), Text(value))
    return Panel(grid, title=Text("element created"), border_style="green", expand=False)


async def _create_account(settings: Settings) -> str:
    """An account with credits and a fresh API key, made by the use case behind ``reelgate keys create``."""
    store = await Store.open(settings.resolved_database_url, pool_size=1, box=load_box(settings))
    try:
        created = await Operators(store).create_key(
            "demo", credits=DEMO_CREDITS * 1000, name="demo", grant_note="demo credits"
        )
    finally:
        await store.close()
    return created.key


@contextlib.contextmanager
def _serving(settings: Settings, listener: socket.socket) -> Iterator[threading.Thread]:
    """Serve the full app (API, worker, dispatcher) from a background thread (yielded) until the block ends."""
    app, _ = build_app(settings)
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="reelgate-demo", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            typer.echo("error: the demo server did not start", err=True)
            raise typer.Exit(1)
        time.sleep(0.02)
    try:
        yield thread
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def draw_samples(folder: Path) -> tuple[Path, Path]:
    """The same cartoon character from the front and from the side, in two scenes, as 768x1024 JPEG files."""
    paths = (folder / "front.jpg", folder / "side.jpg")
    _front().save(paths[0], "JPEG", quality=90)
    _side().save(paths[1], "JPEG", quality=90)
    return paths


def _backdrop(sky: tuple[int, int, int], ground: tuple[int, int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, HEIGHT), sky)
    draw = ImageDraw.Draw(image)
    horizon = int(HEIGHT * 0.78)
    for y in range(horizon):  # the sky darkens towards the top
        fade = 60 * (horizon - y) // horizon
        draw.line([(0, y), (WIDTH, y)], fill=tuple(max(0, c - fade) for c in sky))
    draw.rectangle((0, horizon, WIDTH, HEIGHT), fill=ground)
    return image, draw


def _front() -> Image.Image:
    image, d = _backdrop((150, 200, 245), (110, 170, 90))
    cx = WIDTH // 2
    d.ellipse((cx - 95, 120, cx + 95, 330), fill=SKIN)
    d.chord((cx - 100, 105, cx + 100, 300), 180, 360, fill=HAIR)
    for ex in (cx - 40, cx + 40):
        d.ellipse((ex - 14, 215, ex + 14, 243), fill="white")
        d.ellipse((ex - 7, 222, ex + 7, 236), fill="black")
    d.arc((cx - 40, 250, cx + 40, 300), 20, 160, fill=(150, 40, 40), width=6)
    d.rectangle((cx - 120, 340, cx + 120, 600), fill=SHIRT)
    for sign in (-1, 1):  # arms, hands, legs and shoes, mirrored
        d.rectangle(_span(cx, sign, 125, 190, 350, 580), fill=SHIRT)
        d.ellipse(_span(cx, sign, 115, 200, 570, 640), fill=SKIN)
        d.rectangle(_span(cx, sign, 15, 110, 600, 860), fill=TROUSERS)
        d.rectangle(_span(cx, sign, 10, 125, 860, 900), fill=SHOE)
    return image


def _span(cx: int, sign: int, near: int, far: int, top: int, bottom: int) -> tuple[int, int, int, int]:
    xs = sorted((cx + sign * near, cx + sign * far))
    return xs[0], top, xs[1], bottom


def _side() -> Image.Image:
    image, d = _backdrop((250, 215, 160), (150, 130, 90))
    d.ellipse((560, 90, 690, 220), fill=(255, 240, 150))  # a low sun: another scene as well as another angle
    cx = WIDTH // 2 - 120
    d.ellipse((cx - 85, 120, cx + 85, 330), fill=SKIN)
    d.pieslice((cx - 95, 105, cx + 85, 310), 150, 330, fill=HAIR)
    d.polygon([(cx + 80, 215), (cx + 120, 250), (cx + 80, 262)], fill=SKIN)
    d.ellipse((cx + 30, 210, cx + 52, 232), fill="white")
    d.ellipse((cx + 38, 215, cx + 50, 229), fill="black")
    d.rectangle((cx - 70, 340, cx + 70, 600), fill=SHIRT)
    d.polygon([(cx - 20, 360), (cx + 30, 360), (cx + 170, 520), (cx + 130, 550)], fill=SHIRT)
    d.ellipse((cx + 125, 500, cx + 195, 570), fill=SKIN)
    d.polygon([(cx - 60, 600), (cx + 20, 600), (cx + 150, 850), (cx + 80, 870)], fill=TROUSERS)
    d.polygon([(cx - 40, 600), (cx + 50, 600), (cx - 60, 860), (cx - 130, 845)], fill=TROUSERS)
    d.rectangle((cx + 80, 850, cx + 200, 890), fill=SHOE)
    d.rectangle((cx - 170, 840, cx - 50, 880), fill=SHOE)
    return image
