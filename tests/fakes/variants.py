"""Copies of one picture as users make them (re-encodes, 16-bit PNGs, resizes, small crops, colour shifts)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

Edit = Callable[[Image.Image], bytes]


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    if fmt == "PNG":
        options.setdefault("compress_level", 1)  # the corpus is made of thousands of these: fast over small
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg(image: Image.Image, quality: int) -> bytes:
    return encode(image.convert("RGB") if image.mode not in ("L", "RGB", "CMYK") else image, "JPEG", quality=quality)


def png16_grey(image: Image.Image) -> bytes:
    """A 16-bit greyscale PNG (Pillow mode I;16) spanning the full 0..65535 range, as scanners and tools write."""
    grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey))


def png48(image: Image.Image) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow does not write them)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint16) * 257
    height, width, _ = rgb.shape
    samples = rgb.astype(">u2").view(np.uint8).reshape(height, width * 6)
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), samples], axis=1)  # filter type 0 on each row
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def exif_rotated(image: Image.Image) -> bytes:
    """The pixels stored turned a quarter (as a phone does) with EXIF Orientation 6 saying how to show them."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image.convert("RGB").rotate(90, expand=True), "JPEG", quality=90, exif=exif.tobytes())


def resized(image: Image.Image, fx: float, fy: float | None = None) -> Image.Image:
    fy = fx if fy is None else fy
    return image.resize((round(image.width * fx), round(image.height * fy)), Image.Resampling.LANCZOS)


def cropped(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    """Cut the given fractions off each side."""
    w, h = image.size
    return image.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))


def hue_shifted(image: Image.Image, steps: int) -> Image.Image:
    hsv = np.asarray(image.convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + steps) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def gamma(image: Image.Image, value: float) -> Image.Image:
    table = [round(255 * (i / 255) ** value) for i in range(256)] * 3
    return image.convert("RGB").point(table)


def transparent(image: Image.Image) -> bytes:
    """An RGBA PNG with its near-white background cut out (alpha 0), hiding garbage colour under the cut."""
    pixels = np.asarray(image.convert("RGBA")).copy()
    pixels[(pixels[..., :3] > 245).all(axis=-1)] = (255, 0, 255, 0)
    return encode(Image.fromarray(pixels, "RGBA"))


# Each edit gives a copy of the same picture: the near-duplicate check should refuse every one of them.
DUPLICATES: dict[str, Edit] = {
    "png": lambda im: encode(im),
    "jpeg q90": lambda im: jpeg(im, 90),
    "jpeg q70": lambda im: jpeg(im, 70),
    "jpeg q50": lambda im: jpeg(im, 50),
    "jpeg q30": lambda im: jpeg(im, 30),
    "png 16-bit grey": png16_grey,
    "png 16-bit rgb": png48,
    "png palette 64": lambda im: encode(im.convert("RGB").quantize(64)),
    "png rgba": transparent,
    "jpeg cmyk": lambda im: encode(im.convert("CMYK"), "JPEG", quality=90),
    "jpeg exif rotated": exif_rotated,
    "resize 90% q85": lambda im: jpeg(resized(im, 0.9), 85),
    "resize 768x1024->700x933 q70": lambda im: jpeg(resized(im, 700 / 768, 933 / 1024), 70),
    "resize 70% q85": lambda im: jpeg(resized(im, 0.7), 85),
    "resize 50% png": lambda im: encode(resized(im, 0.5)),
    "upscale 130% q85": lambda im: jpeg(resized(im, 1.3), 85),
    "stretch 100x92% q85": lambda im: jpeg(resized(im, 1.0, 0.92), 85),
    "crop 2% each side": lambda im: encode(cropped(im, 0.02, 0.02, 0.02, 0.02)),
    "crop 5% top q85": lambda im: jpeg(cropped(im, 0, 0.05, 0, 0), 85),
    "crop 4% left+bottom q85": lambda im: jpeg(cropped(im, 0.04, 0, 0, 0.04), 85),
    "brighter 15%": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.15), 85),
    "darker 20%": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(0.8), 85),
    "contrast +30%": lambda im: jpeg(ImageEnhance.Contrast(im).enhance(1.3), 85),
    "saturation 50%": lambda im: jpeg(ImageEnhance.Color(im).enhance(0.5), 85),
    "hue +30": lambda im: jpeg(hue_shifted(im, 30), 85),
    "gamma 0.8": lambda im: jpeg(gamma(im, 0.8), 85),
    "greyscale": lambda im: jpeg(ImageOps.grayscale(im), 85),
    "resize 80% crop 3% brighter q60": lambda im: jpeg(
        ImageEnhance.Brightness(cropped(resized(im, 0.8), 0.03, 0.03, 0, 0)).enhance(1.1), 60
    ),
}
