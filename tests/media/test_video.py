"""inspect_video on real encoded clips: containers by content, duration, sides within 720-2160 px, aspect, thumbnail."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fakes import mediagen
from reelgate.errors import MediaError
from reelgate.media.video import VideoInfo, inspect_video

FIELD = "model_params.element_video_list.refer_videos[0].video_url"
MAX = 200 * 1024 * 1024


def inspect(data: bytes, max_bytes: int = MAX) -> VideoInfo:
    return inspect_video(data, field=FIELD, max_bytes=max_bytes)


def refused(data: bytes, max_bytes: int = MAX) -> str:
    with pytest.raises(MediaError) as caught:
        inspect(data, max_bytes)
    assert caught.value.code == "invalid_parameters" and caught.value.param == FIELD
    assert caught.value.message.startswith(FIELD + " ")
    return caught.value.message


def test_landscape_mp4_is_accepted(landscape_mp4: bytes) -> None:
    info = inspect(landscape_mp4)
    assert (info.container, info.ext, info.width, info.height) == ("mp4", "mp4", 1920, 1080)
    assert info.duration == pytest.approx(5.0, abs=0.05)
    thumbnail = Image.open(io.BytesIO(info.thumbnail_jpeg))
    assert thumbnail.format == "JPEG" and thumbnail.size == (512, 288)


def test_portrait_mov_is_accepted(portrait_mov: bytes) -> None:
    info = inspect(portrait_mov)
    assert (info.container, info.ext, info.width, info.height) == ("mov", "mov", 1080, 1920)
    assert Image.open(io.BytesIO(info.thumbnail_jpeg)).size == (288, 512)


def test_thumbnail_comes_from_the_middle(landscape_mp4: bytes) -> None:
    """Frame i is the scene scrolled by 8*i px; at 4 fps over 5 s the middle is frame 10."""
    thumbnail = np.asarray(Image.open(io.BytesIO(inspect(landscape_mp4).thumbnail_jpeg)).convert("L"), float)
    scene = np.asarray(mediagen.picture(1920, 1080, scene=7))

    def frame(index: int) -> np.ndarray:
        shifted = Image.fromarray(np.roll(scene, index * 8, axis=1)).convert("L")
        return np.asarray(shifted.resize((thumbnail.shape[1], thumbnail.shape[0])), float)

    errors = {index: float(np.abs(thumbnail - frame(index)).mean()) for index in (0, 5, 10, 15, 19)}
    assert min(errors, key=errors.__getitem__) == 10, errors


@pytest.mark.parametrize(("seconds", "shown"), [(2.0, "2.0"), (9.0, "9.0")])
def test_duration_outside_3_to_8_seconds(seconds: float, shown: str) -> None:
    message = refused(mediagen.mp4(1920, 1080, seconds=seconds, fps=2))
    assert message == f"{FIELD} must be 3-8 seconds long, got {shown} s"


@pytest.mark.parametrize("seconds", [3.0, 8.0])
def test_duration_bounds_are_inclusive(seconds: float) -> None:
    assert inspect(mediagen.mp4(1080, 1920, seconds=seconds, fps=2)).duration == pytest.approx(seconds, abs=0.05)


@pytest.mark.parametrize(
    ("width", "height"),
    [(1280, 720), (720, 1280), (720, 720), (1440, 1080), (1800, 720), (720, 1800), (2160, 864)],
)
def test_sides_within_720_to_2160_and_aspect_within_2_5_are_accepted(width: int, height: int) -> None:
    """EvoLink's newer rule (contract 9): 720p, square, 4:3, exactly 2.5:1 either way round, a 2160 px side."""
    info = inspect(mediagen.mp4(width, height, seconds=3, fps=1))
    assert (info.width, info.height) == (width, height)


def test_720p_of_5_seconds_is_accepted() -> None:
    info = inspect(mediagen.mp4(1280, 720, seconds=5, fps=4))
    assert (info.width, info.height) == (1280, 720) and info.duration == pytest.approx(5.0, abs=0.05)
    assert Image.open(io.BytesIO(info.thumbnail_jpeg)).size == (512, 288)


@pytest.mark.parametrize(("width", "height"), [(600, 1080), (1080, 600), (718, 1280), (2176, 880), (880, 2176)])
def test_a_side_outside_720_to_2160_is_refused(width: int, height: int) -> None:
    message = refused(mediagen.mp4(width, height, seconds=3, fps=1))
    assert message == f"{FIELD} must have width and height within 720-2160 px, got {width}x{height}"


@pytest.mark.parametrize(("width", "height"), [(2160, 720), (720, 2160), (1824, 720)])
def test_aspect_beyond_2_5_to_1_is_refused(width: int, height: int) -> None:
    message = refused(mediagen.mp4(width, height, seconds=3, fps=1))
    assert message == f"{FIELD} must have an aspect ratio between 1:2.5 and 2.5:1, got {width}x{height}"


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (mediagen.jpeg(400, 400), "must be an MP4 or MOV video"),
        (b"", "must be an MP4 or MOV video"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "must be an MP4 or MOV video"),
        (b"\x1aE\xdf\xa3 webm/matroska", "must be an MP4 or MOV video"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64, "could not be read as a video"),
    ],
)
def test_not_a_video(data: bytes, rule: str) -> None:
    assert rule in refused(data)


def test_truncated_video_is_refused(landscape_mp4: bytes) -> None:
    assert "could not be read as a video" in refused(landscape_mp4[: len(landscape_mp4) // 3])


def test_too_many_bytes(landscape_mp4: bytes) -> None:
    limit = len(landscape_mp4) - 1
    assert refused(landscape_mp4, max_bytes=limit) == f"{FIELD} is larger than {limit} bytes"


def test_display_rotation_is_honoured() -> None:
    """A phone's portrait clip: coded 1920x1080, shown turned 90° clockwise, so it is 1080x1920 upright."""
    info = inspect(mediagen.with_portrait_rotation(mediagen.mp4(1920, 1080, seconds=4, fps=1)))
    assert (info.width, info.height) == (1080, 1920)
    thumbnail = np.asarray(Image.open(io.BytesIO(info.thumbnail_jpeg)).convert("L"), float)
    assert thumbnail.shape == (512, 288)
    scene = mediagen.picture(1920, 1080, scene=7).convert("L")

    def error(turned: Image.Image) -> float:
        return float(np.abs(thumbnail - np.asarray(turned.resize((288, 512)), float)).mean())

    assert error(scene.rotate(-90, expand=True)) < error(scene.rotate(90, expand=True)) / 2
