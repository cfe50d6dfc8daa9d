"""Per-second prices: the defaults of contract §10, the operator's price file (REELGATE_PRICES) and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reelgate.catalog import default_catalog
from reelgate.config import ConfigError, PriceOverride, Settings
from reelgate.ledger import partial_capture
from reelgate.params import ParamProblem


def _prices(tmp_path: Path, rows: object) -> Settings:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(rows))
    return Settings.from_env({"REELGATE_PRICES": str(path)})


def test_default_prices_follow_the_contract() -> None:
    catalog = default_catalog()
    i2v = catalog["kling-v3-image-to-video"]
    body = {"image_start": "https://e.com/a.jpg", "prompt": "go", "duration": 10}
    expected = {("720p", "off"): 5357, ("720p", "on"): 8071, ("1080p", "off"): 7143, ("1080p", "on"): 10714}
    for (quality, sound), rate in expected.items():
        charge = i2v.charge(i2v.parse({**body, "quality": quality, "sound": sound}), "default")
        assert charge is not None and charge.millicredits == rate * 10 and charge.billing == {"seconds": 10}
    o3 = catalog["kling-o3-image-to-video"]
    charge = o3.charge(o3.parse({"prompt": "go", "quality": "1080p", "sound": "on"}), "default")
    assert charge is not None and charge.millicredits == 8929 * 5
    edit = catalog["kling-o3-video-edit"]
    charge = edit.charge(edit.parse({"video_url": "https://e.com/v.mp4"}), "default")
    assert charge is not None and charge.millicredits == 8000 * 10  # the longest input is reserved
    with pytest.raises(ParamProblem) as refused:
        i2v.charge(i2v.parse({**body, "quality": "4k"}), "default")
    assert refused.value.problems[0][0] == "quality"


def test_the_price_file_overrides_any_price_per_model_tier_and_group(tmp_path: Path) -> None:
    settings = _prices(tmp_path, {"prices": [
        {"model": "kling-v3-image-to-video", "quality": "4k", "millicredits": 20000},
        {"model": "kling-v3-image-to-video", "quality": "720p", "sound": "on", "group": "vip", "millicredits": 6000},
        {"model": "kling-custom-element", "group": "vip", "millicredits": 500},
    ]})  # fmt: skip
    assert settings.prices[1] == PriceOverride("kling-v3-image-to-video", "vip", 6000, "720p", "on")
    catalog = default_catalog(settings.prices)
    i2v = catalog["kling-v3-image-to-video"]
    body = {"image_start": "https://e.com/a.jpg", "prompt": "go"}
    for group, quality, sound, rate in [("default", "4k", "on", 20000), ("default", "4k", "off", 20000),
                                        ("vip", "720p", "on", 6000), ("vip", "720p", "off", 5357)]:  # fmt: skip
        charge = i2v.charge(i2v.parse({**body, "quality": quality, "sound": sound}), group)
        assert charge is not None and charge.millicredits == rate * 5, (group, quality, sound)
    assert catalog["kling-custom-element"].price_for("vip") == 500
    assert catalog["kling-custom-element"].price_for("default") == 1000
    listed = {(p["quality"], p["sound"]): p["price"] for p in i2v.public("vip")["prices"]}
    assert listed[("4k", "on")] == 20 and listed[("720p", "on")] == 6


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ({"prices": [{"model": "kling-v3-image-to-video", "quality": "8k", "millicredits": 1}]}, "quality"),
        ({"prices": [{"model": "kling-o3-video-edit", "quality": "720p", "sound": "on", "millicredits": 1}]}, "sound"),
        ({"prices": [{"model": "kling-v9", "quality": "720p", "millicredits": 1}]}, "kling-v9"),
        ({"prices": [{"model": "kling-custom-element", "quality": "720p", "millicredits": 1}]}, "per call"),
    ],
)
def test_a_price_row_naming_no_model_or_tier_is_refused(tmp_path: Path, rows: object, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        default_catalog(_prices(tmp_path, rows).prices)


@pytest.mark.parametrize(
    "content",
    ["{", "[]", '{"prices": {}}', '{"prices": [{"model": "m", "millicredits": -1}]}',
     '{"prices": [{"model": "m", "millicredits": 1.5}]}', '{"prices": [{"model": "m", "millicredits": 1, "x": 1}]}'],
)  # fmt: skip
def test_a_bad_price_file_is_a_config_error_naming_the_variable(tmp_path: Path, content: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="REELGATE_PRICES"):
        Settings.from_env({"REELGATE_PRICES": str(path)})
    with pytest.raises(ConfigError, match="cannot be read"):
        Settings.from_env({"REELGATE_PRICES": str(tmp_path / "missing.json")})


def test_partial_capture_rounds_up_and_caps() -> None:
    assert partial_capture(53570, 10, 4.2) == 22500
    assert partial_capture(53570, 10, 11) == 53570
    assert partial_capture(53570, 10, -1) == 0
    assert partial_capture(53570, 10, float("nan")) == 53570
    assert partial_capture(7, 3, 1) == 3  # 7/3 = 2.33: up
