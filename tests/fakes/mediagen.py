"""Generate real images and videos in memory for tests: distinct scenes, wrong formats, bombs, tiny videos."""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Literal

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Container = Literal["mp4", "mov"]


def picture(width: int, height: int, *, scene: int = 0) -> Image.Image:
    """A photo-like RGB picture; every ``scene`` value gives a different composition (not a near-duplicate)."""
    rng = random.Random(scene)
    image = _gradient(width, height, rng)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(5, 9)):
        _shape(draw, width, height, rng)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(1, min(width, height) // 300)))
    # Sensor-like noise, so JPEG re-encoding at another quality really changes the bytes and fine detail.
    noise = np.random.default_rng(scene).normal(0, 6, (height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _gradient(width: int, height: int, rng: random.Random) -> Image.Image:
    start = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float64)
    end = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    t = (np.cos(angle) * xs / width + np.sin(angle) * ys / height + 1) / 2
    pixels = start + (end - start) * t[..., None]
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _shape(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random) -> None:
    colour = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(-0.1, 0.9) * height
    x1, y1 = x0 + rng.uniform(0.1, 0.6) * width, y0 + rng.uniform(0.1, 0.6) * height
    kind = rng.choice(("ellipse", "rectangle", "polygon"))
    if kind == "ellipse":
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    elif kind == "rectangle":
        draw.rectangle((x0, y0, x1, y1), fill=colour)
    else:
        points = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.randint(3, 6))]
        draw.polygon(points, fill=colour)


def figure(width: int, height: int, *, view: Literal["front", "side"]) -> Image.Image:
    """The same cartoon character drawn from the front or from the side, on the same background."""
    image = Image.new("RGB", (width, height), (200, 220, 235))
    draw = ImageDraw.Draw(image)
    u, cx = min(width, height) / 10, width / 2
    skin, shirt, trousers = (235, 190, 160), (200, 40, 40), (40, 50, 120)
    draw.rectangle((0, height * 0.85, width, height), fill=(90, 150, 80))
    if view == "front":
        draw.ellipse((cx - u, 0.5 * u, cx + u, 2.5 * u), fill=skin)
        draw.rectangle((cx - 1.5 * u, 2.6 * u, cx + 1.5 * u, 5.5 * u), fill=shirt)
        draw.rectangle((cx - 2.3 * u, 2.8 * u, cx - 1.6 * u, 5.3 * u), fill=shirt)
        draw.rectangle((cx + 1.6 * u, 2.8 * u, cx + 2.3 * u, 5.3 * u), fill=shirt)
        draw.rectangle((cx - 1.4 * u, 5.5 * u, cx - 0.2 * u, 8.5 * u), fill=trousers)
        draw.rectangle((cx + 0.2 * u, 5.5 * u, cx + 1.4 * u, 8.5 * u), fill=trousers)
    else:
        draw.ellipse((cx - 0.9 * u, 0.5 * u, cx + 0.9 * u, 2.5 * u), fill=skin)
        draw.polygon([(cx + 0.8 * u, 1.3 * u), (cx + 1.4 * u, 1.6 * u), (cx + 0.8 * u, 1.8 * u)], fill=skin)
        draw.rectangle((cx - 0.6 * u, 2.6 * u, cx + 0.6 * u, 5.5 * u), fill=shirt)
        draw.polygon([(cx - 0.3 * u, 2.8 * u), (cx + 0.3 * u, 2.8 * u), (cx + 1.8 * u, 4.8 * u)], fill=shirt)
        draw.polygon([(cx - 0.5 * u, 5.5 * u), (cx + 0.5 * u, 5.5 * u), (cx + 1.6 * u, 8.5 * u)], fill=trousers)
        draw.polygon([(cx - 0.5 * u, 5.5 * u), (cx + 0.5 * u, 5.5 * u), (cx - 1.2 * u, 8.5 * u)], fill=trousers)
    return image


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg(width: int, height: int, *, scene: int = 0, quality: int = 90) -> bytes:
    return encode(picture(width, height, scene=scene), "JPEG", quality=quality)


def png(width: int, height: int, *, scene: int = 0, mode: str = "RGB") -> bytes:
    return encode(picture(width, height, scene=scene).convert(mode), "PNG")


def gif(width: int = 400, height: int = 400, *, scene: int = 0) -> bytes:
    return encode(picture(width, height, scene=scene), "GIF")


def webp(width: int = 400, height: int = 400, *, scene: int = 0) -> bytes:
    return encode(picture(width, height, scene=scene), "WEBP")


def with_exif_orientation(data: bytes, orientation: int) -> bytes:
    """Re-save a JPEG with an EXIF Orientation tag (6 = rotate 90 degrees clockwise to display)."""
    image = Image.open(io.BytesIO(data))
    exif = image.getexif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=90, exif=exif.tobytes())


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 50000, height: int = 50000) -> bytes:
    """A few hundred bytes of valid PNG structure declaring ``width`` x ``height`` 8-bit grey pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Only the first rows are present; a decoder would allocate the whole canvas before noticing.
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def mp4(
    width: int = 1920,
    height: int = 1080,
    seconds: float = 5.0,
    fps: int = 10,
    container: Container = "mp4",
    crf: int = 40,
) -> bytes:
    """A small H.264 video (``container`` "mp4" gives brand isom, "mov" brand ``qt  ``); lower crf, finer and larger."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": str(crf)}
        base = np.asarray(picture(width, height, scene=7))
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.roll(base, index * 8, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def with_portrait_rotation(data: bytes) -> bytes:
    """Set the first track's tkhd matrix the way phones record portrait: show the frames turned 90° clockwise."""
    out = bytearray(data)
    box = out.index(b"tkhd")
    version = out[box + 4]
    # size/type, version+flags, times/track id/duration (v0: 20 bytes, v1: 32), reserved, layer/group/volume
    matrix = box + 4 + 4 + (20 if version == 0 else 32) + 8 + 8
    out[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    return bytes(out)
