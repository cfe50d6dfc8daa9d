"""Subjects drawn from several viewpoints (3D-ish scenes, a posed character, a sign) for the near-duplicate corpus."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

from fakes.sign import sign

Category = Literal["photo", "drawing", "flat", "text"]
Style = Literal["photo", "drawing", "flat"]
CATEGORIES: tuple[Category, ...] = ("photo", "drawing", "flat", "text")
# View 0 is the frontal picture; 1..4 are other views of the same subject (another camera, pose or side).
VIEWS = 5
INK = (20, 20, 20)
Colour = tuple[int, int, int]
Point = tuple[float, float]


def view(category: Category, seed: int, index: int, size: tuple[int, int] = (768, 1024)) -> Image.Image:
    """View ``index`` of subject ``seed``: a scene for even seeds, a character for odd ones, a sign for text."""
    if category == "text":
        return sign(seed, index, size)
    if seed % 2 == 0:
        return scene(seed, index, size, category)
    return character(seed, index, size, category)


def finish(image: Image.Image, style: Style, seed: int) -> Image.Image:
    """A photo gets lens blur and sensor noise; flat art and line drawings stay crisp."""
    if style != "photo":
        return image
    image = image.filter(ImageFilter.GaussianBlur(radius=1.5))
    noise = np.random.default_rng(seed).normal(0, 6, (image.height, image.width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8), "RGB")


def gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    width, height = size
    t = (np.arange(height) / max(1, height - 1))[:, None, None]
    rows = np.asarray(top, dtype=np.float64) + (np.asarray(bottom) - np.asarray(top)) * t
    return Image.fromarray(np.broadcast_to(rows, (height, width, 3)).astype(np.uint8), "RGB")


def colour(rng: random.Random, low: int = 30, high: int = 230) -> Colour:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def shade(rgb: Colour, factor: float) -> Colour:
    return (min(255, int(rgb[0] * factor)), min(255, int(rgb[1] * factor)), min(255, int(rgb[2] * factor)))


# --- 3D-ish scenes: boxes and balls on a tiled floor, seen by an orbiting camera ---------------------------------

# (yaw degrees, distance, height) of the camera for each view; all look at the middle of the floor.
_CAMERAS = ((0.0, 9.0, 3.5), (30.0, 9.0, 3.5), (-45.0, 9.0, 3.0), (90.0, 9.5, 3.5), (0.0, 6.5, 5.5))
_LIGHT = np.array([-0.5, 1.0, -0.3]) / np.linalg.norm([-0.5, 1.0, -0.3])
_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (2, 3, 7, 6), (1, 2, 6, 5), (0, 3, 7, 4))


@dataclass(frozen=True)
class _Solid:
    kind: Literal["box", "ball"]
    x: float
    z: float
    w: float
    h: float
    d: float
    yaw: float
    rgb: Colour


@dataclass(frozen=True)
class _Camera:
    pos: NDArray[np.float64]
    right: NDArray[np.float64]
    up: NDArray[np.float64]
    fwd: NDArray[np.float64]
    focal: float
    cx: float
    cy: float

    def project(self, p: NDArray[np.float64]) -> tuple[float, float, float]:
        d = p - self.pos
        z = float(d @ self.fwd)
        return self.cx + self.focal * float(d @ self.right) / z, self.cy - self.focal * float(d @ self.up) / z, z

    def horizon(self) -> float:
        flat = np.array([self.fwd[0], 0.0, self.fwd[2]])
        flat /= np.linalg.norm(flat)
        return self.cy - self.focal * float(flat @ self.up) / float(flat @ self.fwd)


def _camera(index: int, size: tuple[int, int]) -> _Camera:
    yaw, distance, height = _CAMERAS[index]
    pos = np.array([distance * math.sin(math.radians(yaw)), height, -distance * math.cos(math.radians(yaw))])
    fwd = np.array([0.0, 0.8, 0.0]) - pos
    fwd /= np.linalg.norm(fwd)
    right = np.cross([0.0, 1.0, 0.0], fwd)
    right /= np.linalg.norm(right)
    return _Camera(pos, right, np.cross(fwd, right), fwd, 1.1 * min(size), size[0] / 2, size[1] / 2)


def _solids(rng: random.Random) -> list[_Solid]:
    solids = []
    for _ in range(rng.randint(4, 6)):
        kind: Literal["box", "ball"] = rng.choice(("box", "box", "ball"))
        w = rng.uniform(0.6, 1.6)
        h = w if kind == "ball" else rng.uniform(0.6, 2.6)
        solids.append(
            _Solid(
                kind,
                rng.uniform(-3, 3),
                rng.uniform(-3, 3),
                w,
                h,
                rng.uniform(0.6, 1.6),
                rng.uniform(0, 90),
                colour(rng),
            )
        )
    return solids


def scene(seed: int, index: int, size: tuple[int, int], style: Style) -> Image.Image:
    rng = random.Random(seed)
    sky, floor, floor2, solids = colour(rng, 120, 240), colour(rng, 60, 200), colour(rng, 60, 200), _solids(rng)
    cam = _camera(index, size)
    horizon = int(cam.horizon())
    if style == "drawing":
        image = Image.new("RGB", size, "white")
        ImageDraw.Draw(image).line((0, horizon, size[0], horizon), fill=INK, width=3)
    elif style == "flat":
        image = Image.new("RGB", size, sky)
        ImageDraw.Draw(image).rectangle((0, horizon, size[0], size[1]), fill=floor)
    else:
        image = gradient(size, shade(sky, 0.7), sky)
        top = min(max(horizon, 0), size[1] - 1)
        image.paste(gradient((size[0], size[1] - top), shade(floor, 0.8), floor), (0, top))
    draw = ImageDraw.Draw(image)
    if style != "drawing":
        _floor_tiles(draw, cam, floor, floor2)
    for solid in sorted(solids, key=lambda s: -cam.project(np.array([s.x, s.h / 2, s.z]))[2]):
        (_ball if solid.kind == "ball" else _box)(draw, cam, solid, style)
    return finish(image, style, seed * 100 + index)


def _floor_tiles(draw: ImageDraw.ImageDraw, cam: _Camera, a: Colour, b: Colour) -> None:
    for i in range(-4, 4):
        for j in range(-4, 4):
            corners = [cam.project(np.array([x, 0.0, z])) for x, z in ((i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1))]
            if min(c[2] for c in corners) > 0.5:
                draw.polygon([(c[0], c[1]) for c in corners], fill=a if (i + j) % 2 else b)


def _box(draw: ImageDraw.ImageDraw, cam: _Camera, s: _Solid, style: Style) -> None:
    cos, sin = math.cos(math.radians(s.yaw)), math.sin(math.radians(s.yaw))
    local = [(-s.w / 2, -s.d / 2), (s.w / 2, -s.d / 2), (s.w / 2, s.d / 2), (-s.w / 2, s.d / 2)]
    base = [np.array([s.x + u * cos - v * sin, 0.0, s.z + u * sin + v * cos]) for u, v in local]
    corners = base + [p + np.array([0.0, s.h, 0.0]) for p in base]
    centre = sum(corners) / 8
    for face in _FACES:
        points = [corners[k] for k in face]
        middle = sum(points) / 4
        normal = middle - centre
        normal /= np.linalg.norm(normal)
        if (middle - cam.pos) @ normal >= 0:
            continue  # faces away from the camera
        flat = [cam.project(p)[:2] for p in points]
        if style == "drawing":
            draw.polygon(flat, fill="white", outline=INK, width=3)
        else:
            draw.polygon(flat, fill=shade(s.rgb, 0.45 + 0.55 * max(0.0, float(normal @ _LIGHT))))


def _ball(draw: ImageDraw.ImageDraw, cam: _Camera, s: _Solid, style: Style) -> None:
    r = s.w / 2
    x, y, z = cam.project(np.array([s.x, r, s.z]))
    radius = cam.focal * r / z
    if style == "drawing":
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill="white", outline=INK, width=3)
        return
    steps = 12 if style == "photo" else 2
    for k in range(steps):
        t = k / steps
        rr, off = radius * (1 - 0.7 * t), radius * 0.35 * t
        cx, cy = x - off, y - off
        draw.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill=shade(s.rgb, 0.55 + 0.6 * t))


# --- a character: the same person turned, posed and seen from the back ----------------------------------------

# (turn degrees: 0 front, 90 facing right, -45 three-quarter left, 180 back; raised arm)
_POSES = ((0.0, False), (0.0, True), (90.0, False), (-45.0, False), (180.0, False))


@dataclass(frozen=True)
class _Look:
    skin: Colour
    hair: Colour
    shirt: Colour
    trousers: Colour
    bag: Colour
    badge: Colour
    back: Colour
    ground: Colour
    head: float
    girth: float


def _look(rng: random.Random) -> _Look:
    return _Look(
        skin=(rng.randint(180, 240), rng.randint(140, 200), rng.randint(110, 170)),
        hair=colour(rng, 20, 120),
        shirt=colour(rng),
        trousers=colour(rng, 20, 150),
        bag=colour(rng),
        badge=colour(rng),
        back=colour(rng, 140, 240),
        ground=colour(rng, 60, 180),
        head=rng.uniform(0.9, 1.2),
        girth=rng.uniform(1.2, 1.7),
    )


def _limb(top: Point, angle: float, length: float, width: float) -> list[Point]:
    """A limb hanging from ``top`` at ``angle`` degrees from straight down (positive swings to screen right)."""
    dx, dy = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    nx, ny = dy * width / 2, -dx * width / 2
    bottom = (top[0] + dx * length, top[1] + dy * length)
    return [(top[0] + nx, top[1] + ny), (bottom[0] + nx, bottom[1] + ny), (bottom[0] - nx, bottom[1] - ny),
            (top[0] - nx, top[1] - ny)]  # fmt: skip


class _Pen:
    """Fills shapes for flat art and photos; draws white shapes with ink outlines for line drawings."""

    def __init__(self, image: Image.Image, style: Style) -> None:
        self.draw, self.line = ImageDraw.Draw(image), style == "drawing"

    def polygon(self, points: list[Point], rgb: Colour) -> None:
        if self.line:
            self.draw.polygon(points, fill="white", outline=INK, width=3)
        else:
            self.draw.polygon(points, fill=rgb)

    def ellipse(self, box: tuple[float, float, float, float], rgb: Colour) -> None:
        if self.line:
            self.draw.ellipse(box, fill="white", outline=INK, width=3)
        else:
            self.draw.ellipse(box, fill=rgb)


def character(seed: int, index: int, size: tuple[int, int], style: Style) -> Image.Image:
    rng = random.Random(seed)
    look = _look(rng)
    width, height = size
    if style == "drawing":
        image = Image.new("RGB", size, "white")
    elif style == "flat":
        image = Image.new("RGB", size, look.back)
    else:
        image = gradient(size, shade(look.back, 0.75), look.back)
    ground = int(height * 0.86)
    ImageDraw.Draw(image).rectangle((0, ground, width, height), fill=INK if style == "drawing" else look.ground)
    if style == "drawing":
        ImageDraw.Draw(image).rectangle((0, ground + 3, width, height), fill="white")
    turn, raised = _POSES[index]
    _body(_Pen(image, style), look, width / 2, height / 11, turn, raised)
    return finish(image, style, seed * 100 + index)


def _body(pen: _Pen, look: _Look, cx: float, u: float, turn: float, raised: bool) -> None:
    front = math.cos(math.radians(turn))  # 1 front, 0 profile, -1 back
    facing = math.sin(math.radians(turn))  # > 0 looks to screen right
    half = u * look.girth * (0.45 + 0.55 * abs(front))
    shoulder, hip, foot = 2.8 * u, 5.8 * u, 9.4 * u
    stride = 12.0 * facing
    for side in (-1, 1):
        pen.polygon(_limb((cx + side * half * 0.5, hip), side * 4 + stride * side, foot - hip, 0.9 * u), look.trousers)
    pen.polygon([(cx - half, shoulder), (cx + half, shoulder), (cx + half, hip), (cx - half, hip)], look.shirt)
    if front > 0.2:
        r = 0.45 * u
        bx = cx + facing * half * 0.5
        pen.ellipse((bx - r, 3.8 * u - r, bx + r, 3.8 * u + r), look.badge)
    for side in (-1, 1):
        angle = 150.0 if raised and side == 1 else side * 12.0 + 20 * facing
        pen.polygon(_limb((cx + side * (half + 0.35 * u), shoulder + 0.2 * u), angle, 3.0 * u, 0.7 * u), look.shirt)
    bag_x = cx - front * (half + 0.9 * u) + facing * 0.6 * u
    pen.polygon([(bag_x - 0.6 * u, 5.0 * u), (bag_x + 0.6 * u, 5.0 * u), (bag_x + 0.7 * u, 6.4 * u),
                 (bag_x - 0.7 * u, 6.4 * u)], look.bag)  # fmt: skip
    _head(pen, look, cx, u, front, facing)


def _head(pen: _Pen, look: _Look, cx: float, u: float, front: float, facing: float) -> None:
    r = u * look.head
    top, mid = 2.6 * u - 2 * r, 2.6 * u - r
    pen.ellipse((cx - r, top, cx + r, top + 2 * r), look.skin if front > -0.5 else look.hair)
    if front <= -0.5:
        return  # the back of the head is all hair
    pen.polygon([(cx - r, mid - 0.2 * r), (cx - 0.8 * r, top + 0.1 * r), (cx + 0.8 * r, top + 0.1 * r),
                 (cx + r, mid - 0.2 * r), (cx - facing * r, mid - 0.45 * r)], look.hair)  # fmt: skip
    eye = 0.13 * r
    eyes = (-0.4, 0.4) if abs(facing) < 0.9 else (0.0,)
    for e in eyes:
        x = cx + (e * front + 0.55 * facing) * r
        pen.ellipse((x - eye, mid - eye, x + eye, mid + eye), (30, 30, 30))
    if abs(facing) > 0.3:
        tip = cx + facing * 1.25 * r
        pen.polygon(
            [(cx + facing * 0.9 * r, mid), (tip, mid + 0.25 * r), (cx + facing * 0.9 * r, mid + 0.4 * r)], look.skin
        )
