"""``reelgate video create | wait | download``: videos made with the caller's elements, through ``client.videos``
(the Kling video models; the server needs an upstream Kling channel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from reelgate.cli.user import (
    EXIT_USAGE,
    ApiKey,
    AsJson,
    BaseUrl,
    CallbackUrl,
    IdempotencyKey,
    TaskId,
    fail,
    finish_wait,
    session,
    stderr_console,
    submitted,
    wait_with_bar,
)
from reelgate_client import Reelgate, VideoTask

_URL = "an http(s) URL"
VideoModel = Annotated[str, typer.Option("--model", help="A video model, e.g. kling-o3-text-to-video.")]
Prompt = Annotated[str | None, typer.Option("--prompt", help="What happens; <<<element_1>>> is the first --element.")]
Elements = Annotated[list[str] | None, typer.Option("--element", help="An element id to use; repeatable, in order.")]
Duration = Annotated[int | None, typer.Option("--duration", help="Seconds (the model's default when omitted).")]
Quality = Annotated[str | None, typer.Option("--quality", help="720p, 1080p or 4k (per model).")]
Sound = Annotated[str | None, typer.Option("--sound", help="on or off.")]
AspectRatio = Annotated[str | None, typer.Option("--aspect-ratio", help="16:9, 9:16 or 1:1 (per model).")]
NegativePrompt = Annotated[str | None, typer.Option("--negative-prompt", help="What to avoid.")]
ImageStart = Annotated[str | None, typer.Option("--image-start", help=f"First frame ({_URL}).")]
ImageEnd = Annotated[str | None, typer.Option("--image-end", help=f"Last frame ({_URL}).")]
Images = Annotated[
    list[str] | None, typer.Option("--image", help=f"A reference image, image_urls ({_URL}); repeatable.")
]
VideoUrl = Annotated[str | None, typer.Option("--video-url", help=f"The input video, video_url ({_URL}).")]
MotionVideos = Annotated[
    list[str] | None, typer.Option("--motion-video", help=f"video_urls, the motion to follow ({_URL}); repeatable.")
]
KeepSound = Annotated[bool, typer.Option("--keep-original-sound", help="Keep the input video's sound.")]
Watermark = Annotated[bool, typer.Option("--watermark", help="Also make a watermarked variant.")]
Params = Annotated[
    list[str] | None,
    typer.Option("--param", help="A model_params option KEY=VALUE (VALUE as JSON if it parses); repeatable."),
]
WaitVideo = Annotated[bool, typer.Option("--wait", help="Wait with a progress bar, then print the video URL.")]
Output = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", metavar="FILE", help="Wait, then save the first result to this file (implies --wait)."
    ),
]
SaveTo = Annotated[
    Path | None, typer.Option("--output", "-o", metavar="FILE", help="Also save the first result to this file.")
]
DownloadTo = Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="Where to save the video.")]
Index = Annotated[int, typer.Option("--index", min=0, help="Which result (0: the video; 1: a watermarked variant).")]
Target = Annotated[
    str,
    typer.Argument(metavar="TASK_ID_OR_URL", help="A completed video task's id, or a result URL.", show_default=False),
]
VideoTimeout = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait before giving up (exit 4).")]


def _model_params(values: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--param")
        try:
            params[key.strip()] = json.loads(raw)
        except ValueError:
            params[key.strip()] = raw
    return params


def _save(client: Reelgate, target: VideoTask | str, output: Path, index: int = 0) -> None:
    """Download a result to ``output``, with a spinner; a file that cannot be written is a usage error."""
    shown = target.video_url if isinstance(target, VideoTask) else target
    try:
        with stderr_console().status(f"downloading {shown} to {output}"):
            saved = client.videos.download(target, output, index=index)
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE) from None
    typer.echo(f"saved {saved} ({saved.stat().st_size / 1e6:.1f} MB)", err=True)


def video_create(
    model: VideoModel,
    prompt: Prompt = None,
    element: Elements = None,
    duration: Duration = None,
    quality: Quality = None,
    sound: Sound = None,
    aspect_ratio: AspectRatio = None,
    negative_prompt: NegativePrompt = None,
    image_start: ImageStart = None,
    image_end: ImageEnd = None,
    image: Images = None,
    video_url: VideoUrl = None,
    motion_video: MotionVideos = None,
    keep_original_sound: KeepSound = False,
    watermark: Watermark = False,
    param: Params = None,
    callback_url: CallbackUrl = None,
    idempotency_key: IdempotencyKey = None,
    wait: WaitVideo = False,
    output: Output = None,
    timeout: VideoTimeout = 1800.0,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Generate a video with your elements (client.videos.create).

    The video models are Kling's: the server needs an upstream Kling channel. Without --wait or --output the task
    id is printed at once; with them, a progress bar, then the video URL (and the file).
    """
    model_params = _model_params(param)
    with session(api_key, base_url, as_json=as_json) as client:
        task = client.videos.create(
            model=model, prompt=prompt, elements=element or [], duration=duration, quality=quality, sound=sound,
            aspect_ratio=aspect_ratio, negative_prompt=negative_prompt, image_start=image_start, image_end=image_end,
            image_urls=image or [], video_url=video_url, video_urls=motion_video or [],
            keep_original_sound=keep_original_sound or None, watermark=watermark or None, model_params=model_params,
            callback_url=callback_url, idempotency_key=idempotency_key,
        )  # fmt: skip
        if not (wait or output):
            submitted(task, as_json)
            return
        done = VideoTask.from_task(wait_with_bar(client, task, timeout, f"video {model}"))
        finish_wait(done, as_json)
        if output is not None:
            _save(client, done, output)


def video_wait(
    task_id: TaskId,
    output: SaveTo = None,
    timeout: VideoTimeout = 1800.0,
    as_json: AsJson = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Wait for a video task, then print its video URL(s) (client.videos.wait).

    A progress bar goes to stderr; --output also saves the video. Exit 3 if the task fails, 4 on timeout.
    """
    with session(api_key, base_url, as_json=as_json) as client:
        done = VideoTask.from_task(wait_with_bar(client, task_id, timeout, task_id))
        finish_wait(done, as_json)
        if output is not None:
            _save(client, done, output)


def video_download(
    target: Target,
    output: DownloadTo,
    index: Index = 0,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Save a video task's result to a file (client.videos.download).

    The video is streamed to a temporary file beside FILE and renamed once whole, so FILE never holds half a video.
    """
    with session(api_key, base_url) as client:
        _save(client, target, output, index)


def video_app() -> typer.Typer:
    video = typer.Typer(no_args_is_help=True, help="Generate videos that use your elements; wait for and save them.")
    video.command("create")(video_create)
    video.command("wait")(video_wait)
    video.command("download")(video_download)
    return video
