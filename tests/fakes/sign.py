"""A text-heavy subject (a printed notice) and the views a camera gives of it: flat-on, angled, close up, far off."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Where the page's corners land, as fractions of the frame (top-left, top-right, bottom-right, bottom-left).
_QUADS = {
    1: ((0.06, 0.04), (0.86, 0.14), (0.86, 0.86), (0.06, 0.96)),  # seen from the left
    2: ((0.22, 0.16), (0.96, 0.03), (0.96, 0.97), (0.22, 0.84)),  # seen from the right, closer to the edge
    4: ((0.26, 0.22), (0.76, 0.25), (0.73, 0.80), (0.23, 0.77)),  # further off and a little tilted
}
_SYLLABLES = ("ka", "lo", "mi", "ne", "ra", "tu", "vo", "se", "di", "po", "an", "el", "or", "us", "ti", "be")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))


def page(seed: int, size: tuple[int, int]) -> Image.Image:
    """A notice: a coloured title band, a picture box and paragraphs of words in Pillow's default font."""
    rng = random.Random(seed)
    width, height = size
    paper = (rng.randint(225, 255), rng.randint(225, 255), rng.randint(215, 250))
    band = (rng.randint(20, 160), rng.randint(20, 160), rng.randint(20, 160))
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 0.15 * height), fill=band)
    title = ImageFont.load_default(size=max(12, width // 12))
    draw.text((0.06 * width, 0.035 * height), f"{_word(rng)} {_word(rng)}".upper(), fill="white", font=title)
    box_left = rng.random() < 0.5
    box = (0.06 * width, 0.2 * height, 0.46 * width, 0.42 * height)
    if not box_left:
        box = (0.54 * width, box[1], 0.94 * width, box[3])
    draw.rectangle(box, fill=(rng.randint(40, 200), rng.randint(40, 200), rng.randint(40, 200)))
    _paragraphs(draw, rng, size, box)
    return image


def _paragraphs(draw: ImageDraw.ImageDraw, rng: random.Random, size: tuple[int, int], box: tuple[float, ...]) -> None:
    width, height = size
    body = ImageFont.load_default(size=max(8, width // 30))
    step = 1.5 * max(8, width // 30)
    y = 0.2 * height
    while y < 0.94 * height:
        beside_box = y < box[3] + step * 0.3
        left = box[2] + 0.04 * width if beside_box and box[0] < width / 2 else 0.06 * width
        right = box[0] - 0.04 * width if beside_box and box[0] > width / 2 else 0.94 * width
        line, x = [], left
        while True:
            word = _word(rng)
            advance = draw.textlength(word + " ", font=body)
            if x + advance > right:
                break
            line.append(word)
            x += advance
        draw.text((left, y), " ".join(line), fill=(25, 25, 35), font=body)
        y += step * (2 if rng.random() < 0.12 else 1)


def _perspective(quad: tuple[tuple[float, float], ...], frame: tuple[int, int], src: tuple[int, int]) -> list[float]:
    """Coefficients for Image.transform: map each output corner of ``quad`` back to the source page's corner."""
    corners = ((0, 0), (src[0], 0), (src[0], src[1]), (0, src[1]))
    rows, rhs = [], []
    for (fx, fy), (u, v) in zip(quad, corners, strict=True):
        x, y = fx * frame[0], fy * frame[1]
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows), np.array(rhs))]


def sign(seed: int, index: int, size: tuple[int, int]) -> Image.Image:
    """View ``index`` of notice ``seed``: 0 the page itself, 3 a close-up, the others photographed on a wall."""
    if index == 0:
        return page(seed, size)
    if index == 3:
        big = page(seed, (size[0] * 2, size[1] * 2))
        left, top = int(size[0] * 0.3), int(size[1] * 0.5)
        return big.crop((left, top, left + size[0], top + size[1]))
    rng = random.Random(seed * 7 + index)
    wall = (rng.randint(90, 200), rng.randint(90, 200), rng.randint(90, 200))
    frame = Image.new("RGB", size, wall)
    ImageDraw.Draw(frame).rectangle(
        (0, 0.9 * size[1], size[0], size[1]), fill=(wall[0] // 2, wall[1] // 2, wall[2] // 2)
    )
    flat = page(seed, size)
    coeffs = _perspective(_QUADS[index], size, size)
    warped = flat.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
    mask = Image.new("L", size, 255).transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    frame.paste(warped, (0, 0), mask)
    return frame
