"""The near-duplicate measure itself: what a picture looks like before fingerprinting, and the decision boundary."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fakes import mediagen, variants
from reelgate.media.images import inspect_image
from reelgate.media.similarity import (
    NEAR_DUPLICATE_MAX_DIFFERENCE,
    Fingerprint,
    difference,
    displayed,
    fingerprint,
    is_same_picture,
)

RAMP = np.tile(np.linspace(0, 1, 400), (300, 1))  # black on the left to white on the right


@pytest.mark.parametrize(("mode", "dtype", "white"), [("I;16", np.uint16, 65535), ("I", np.int32, 65535),
                                                      ("F", np.float32, 255)])  # fmt: skip
def test_wide_samples_are_scaled_to_8_bits_not_clipped(mode: str, dtype: type, white: int) -> None:
    image = Image.fromarray((RAMP * white).astype(dtype), mode if mode != "I;16" else None)
    assert image.mode == mode
    shown = np.asarray(displayed(image), dtype=np.int16)
    expected = np.rint(RAMP * 255)
    assert displayed(image).mode == "L" and np.abs(shown - expected).max() <= 1


def test_a_transparent_16_bit_grey_level_is_shown_white() -> None:
    samples = (RAMP * 65535).astype(np.uint16)
    samples[:, :100] = 777
    image = Image.fromarray(samples)
    image.info["transparency"] = 777
    shown = np.asarray(displayed(image))
    assert (shown[:, :100] == 255).all() and shown[:, 200].max() < 255


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_alpha_is_composited_on_white(mode: str) -> None:
    image = Image.new("RGBA", (400, 300), (200, 0, 200, 0))
    ImageDraw.Draw(image).rectangle((100, 100, 200, 200), fill=(0, 0, 0, 255))
    converted = image.convert(mode) if mode != "PA" else image.convert("RGB").convert("P").convert("PA")
    if mode == "PA":
        converted.putalpha(image.getchannel("A"))
    shown = np.asarray(displayed(converted).convert("L"))
    assert shown[10, 10] == 255 and shown[150, 150] == 0


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "YCbCr"])
def test_every_8_bit_mode_is_shown_as_l_or_rgb(mode: str) -> None:
    assert displayed(mediagen.picture(400, 300).convert(mode)).mode in ("L", "RGB")


def _fp(image: Image.Image) -> Fingerprint:
    return fingerprint(image)


def test_identical_pictures_measure_zero_and_the_measure_ignores_size() -> None:
    picture = mediagen.picture(640, 480, scene=2)
    assert difference(_fp(picture), _fp(picture)) == 0
    assert difference(_fp(picture), _fp(picture.resize((320, 240)))) <= 10


def test_a_greyscale_copy_is_compared_on_luminance_only() -> None:
    picture = mediagen.picture(640, 480, scene=2)
    grey = _fp(picture.convert("L"))
    assert _fp(picture).colourful and not grey.colourful
    assert difference(_fp(picture), grey) <= 10


def test_the_threshold_is_25() -> None:
    assert NEAR_DUPLICATE_MAX_DIFFERENCE == 25


@pytest.mark.parametrize("measured", range(22, 29))
def test_the_decision_at_and_around_the_threshold(measured: int) -> None:
    # A mutant moving the threshold by up to 3 either way changes one of these answers.
    assert is_same_picture(measured) is (measured <= 25)


def _disc(picture: Image.Image, strength: float) -> Fingerprint:
    overlay = picture.copy()
    ImageDraw.Draw(overlay).ellipse((400, 120, 470, 190), fill=(255, 255, 255))
    data = variants.encode(Image.blend(picture, overlay, strength))
    return inspect_image(data, field="f", max_bytes=len(data)).fingerprint


@pytest.mark.parametrize(("strength", "measured"), [(0.05, 7), (0.189, 25), (0.196, 26), (0.3, 40)])
def test_a_local_change_measures_in_proportion_to_its_strength(strength: float, measured: int) -> None:
    """The pairs test_near_duplicates.py puts on either side of the threshold really measure 25 and 26."""
    picture = mediagen.picture(640, 480, scene=3)
    original = inspect_image(variants.encode(picture), field="f", max_bytes=10**7).fingerprint
    assert difference(original, _disc(picture, strength)) == measured
