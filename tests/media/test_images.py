"""inspect_image on real generated files: formats by content, size, bombs, corruption, dimensions, near-duplicates."""

from __future__ import annotations

import io
import itertools
import time
import tracemalloc

import pytest
from PIL import Image

from fakes import mediagen
from reelgate.errors import MediaError
from reelgate.media.images import ImageInfo, inspect_image, is_near_duplicate
from reelgate.media.similarity import NEAR_DUPLICATE_MAX_DIFFERENCE, THUMB, difference

FIELD = "model_params.element_image_list.frontal_image"
MAX = 10 * 1024 * 1024


def inspect(data: bytes, max_bytes: int = MAX) -> ImageInfo:
    return inspect_image(data, field=FIELD, max_bytes=max_bytes)


def refused(data: bytes, max_bytes: int = MAX) -> str:
    with pytest.raises(MediaError) as caught:
        inspect(data, max_bytes)
    assert caught.value.code == "image_processing_error" and caught.value.param == FIELD
    assert caught.value.message.startswith(FIELD + " ")
    return caught.value.message


def test_jpeg_is_accepted() -> None:
    info = inspect(mediagen.jpeg(640, 480))
    assert (info.format, info.ext, info.width, info.height) == ("jpeg", "jpg", 640, 480)
    assert info.fingerprint.ycc.shape == (THUMB, THUMB, 3)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L"])
def test_png_is_accepted_in_every_colour_mode(mode: str) -> None:
    info = inspect(mediagen.png(400, 500, mode=mode))
    assert (info.format, info.ext, info.width, info.height) == ("png", "png", 400, 500)


def test_format_is_decided_by_content_not_name() -> None:
    # A PNG is a PNG whatever the URL or data URI claimed; GIF bytes are refused even if called .jpg.
    assert inspect(mediagen.png(300, 300)).format == "png"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (mediagen.gif(), "a GIF image"),
        (mediagen.webp(), "a WebP image"),
        (mediagen.encode(mediagen.picture(400, 400), "BMP"), "a BMP image"),
        (mediagen.encode(mediagen.picture(400, 400), "TIFF"), "a TIFF image"),
        (b"%PDF-1.7 ...", "a PDF document"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "an SVG/XML/HTML document"),
        (b"\x00\x01\x02\x03 random", "an unrecognised file type"),
        (b"", "no data"),
    ],
)
def test_other_formats_are_refused_by_name(data: bytes, named: str) -> None:
    assert refused(data) == f"{FIELD} must be a JPEG or PNG image, got {named}"


def test_too_many_bytes() -> None:
    data = mediagen.jpeg(400, 400)
    assert refused(data, max_bytes=len(data) - 1).endswith(f"is larger than {len(data) - 1} bytes")


def test_png_bomb_is_refused_from_the_header_without_allocating() -> None:
    bomb = mediagen.png_bomb(50000, 50000)
    assert len(bomb) < 2000
    tracemalloc.start()
    started = time.monotonic()
    try:
        message = refused(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "declares 50000x50000 pixels" in message
    assert peak < 5 * 1024 * 1024 and time.monotonic() - started < 0.5


def test_jpeg_declaring_huge_dimensions_is_refused_before_decoding() -> None:
    data = bytearray(mediagen.jpeg(400, 400))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    assert "declares 60000x60000 pixels" in refused(bytes(data))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_truncated_image_is_refused(fmt: str) -> None:
    data = mediagen.jpeg(640, 480) if fmt == "jpeg" else mediagen.png(640, 480)
    assert refused(data[: len(data) // 2]).endswith(f"is a corrupt or truncated {fmt.upper()} image")


def test_corrupt_image_data_is_refused() -> None:
    data = bytearray(mediagen.png(400, 400))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64  # breaks the IDAT CRC and the zlib stream
    assert "corrupt" in refused(bytes(data))
    assert "corrupt" in refused(b"\xff\xd8\xff\xe0" + b"\x00" * 10)  # JPEG magic, no header


@pytest.mark.parametrize(("width", "height"), [(299, 400), (400, 299), (100, 100)])
def test_too_small(width: int, height: int) -> None:
    message = refused(mediagen.png(width, height))
    assert message == f"{FIELD} must be at least 300x300 pixels, got {width}x{height}"


@pytest.mark.parametrize(("width", "height"), [(300, 300), (750, 300), (300, 750)])
def test_smallest_and_most_elongated_allowed(width: int, height: int) -> None:
    assert inspect(mediagen.png(width, height)).width == width


@pytest.mark.parametrize(("width", "height"), [(751, 300), (300, 760), (1200, 400)])
def test_bad_aspect_ratio(width: int, height: int) -> None:
    message = refused(mediagen.jpeg(width, height))
    assert message == f"{FIELD} must have an aspect ratio between 1:2.5 and 2.5:1, got {width}x{height}"


def test_exif_orientation_is_applied() -> None:
    base = mediagen.jpeg(600, 400, scene=4)
    # Orientation 6: stored landscape, displayed rotated 90 degrees clockwise (portrait).
    tagged = inspect(mediagen.with_exif_orientation(base, 6))
    upright = mediagen.encode(Image.open(io.BytesIO(base)).rotate(-90, expand=True), "JPEG", quality=90)
    assert (tagged.width, tagged.height) == (400, 600)
    assert difference(tagged.fingerprint, inspect(upright).fingerprint) <= 12
    assert not is_near_duplicate(tagged, inspect(base))  # the fingerprint sees the displayed picture


def _variants(data: bytes) -> dict[str, bytes]:
    image = Image.open(io.BytesIO(data))
    return {
        "jpeg q30": mediagen.encode(image, "JPEG", quality=30),
        "resized 70%": mediagen.encode(image.resize((448, 336)), "JPEG", quality=85),
        "png": mediagen.encode(image, "PNG"),
    }


def test_near_duplicate_threshold_separates_copies_from_other_pictures() -> None:
    """Copies of a photo (re-encoded, resized) measure well under the threshold, other scenes far over it; the
    exact boundary is in tests/media/test_near_duplicates.py, the whole corpus in bench/near_duplicates.py."""
    copies: list[int] = []
    for scene in range(6):
        photo = mediagen.jpeg(640, 480, scene=scene, quality=95)
        original = inspect(photo)
        for data in _variants(photo).values():
            copy = inspect(data)
            copies.append(difference(original.fingerprint, copy.fingerprint))
            assert is_near_duplicate(original, copy)
    scenes = [inspect(mediagen.jpeg(640, 480, scene=scene)) for scene in range(8)]
    others = [difference(a.fingerprint, b.fingerprint) for a, b in itertools.combinations(scenes, 2)]
    assert max(copies) <= 15 < NEAR_DUPLICATE_MAX_DIFFERENCE, copies
    assert min(others) > 3 * NEAR_DUPLICATE_MAX_DIFFERENCE, sorted(others)[:5]
    assert not any(is_near_duplicate(a, b) for a, b in itertools.combinations(scenes, 2))


def test_front_and_side_views_of_one_character_are_not_near_duplicates() -> None:
    front = inspect(mediagen.encode(mediagen.figure(600, 800, view="front"), "PNG"))
    side = inspect(mediagen.encode(mediagen.figure(600, 800, view="side"), "PNG"))
    front_again = inspect(mediagen.encode(mediagen.figure(600, 800, view="front"), "JPEG", quality=60))
    assert not is_near_duplicate(front, side)
    assert is_near_duplicate(front, front_again)
