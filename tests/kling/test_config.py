"""Kling configuration, channel limits and selection: no network, no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reelgate.assets import AssetStore
from reelgate.catalog.custom_element import MediaPipeline
from reelgate.config import ConfigError, Settings
from reelgate.providers.kling.api import KlingClient, KlingCredentials
from reelgate.providers.kling.channels import Busy, Channel, ChannelPool, TokenBucket, load_config_file
from reelgate.providers.kling.provider import build_kling_provider
from reelgate.storage import DirectoryStorage

SECRET = "sk-very-SECRET-value-0123456789"
CHANNEL = {"name": "main", "access_key": "ak-1234567890", "secret_key": SECRET}


def _file(tmp_path: Path, raw: object, mode: int = 0o600) -> str:
    path = tmp_path / "kling.json"
    path.write_text(json.dumps(raw))
    path.chmod(mode)
    return str(path)


def _pipeline(tmp_path: Path, settings: Settings) -> MediaPipeline:
    return MediaPipeline(settings, AssetStore(DirectoryStorage(tmp_path / "assets")))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o610])
def test_a_config_file_others_can_touch_is_refused(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path, {"channels": [CHANNEL]}, mode)
    with pytest.raises(ConfigError, match="chmod 600") as caught:
        load_config_file(path)
    assert f"{mode:04o}" in str(caught.value)


def test_a_0400_file_is_accepted_and_secrets_stay_hidden(tmp_path: Path) -> None:
    config = load_config_file(_file(tmp_path, {"channels": [CHANNEL], "media_handoff": "url"}, 0o400))
    assert config.media_handoff == "url" and config.channels[0].base_url == "https://api-singapore.klingai.com"
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"channels": []}, "channels"),
        ({"channels": [CHANNEL, CHANNEL]}, "unique"),
        ({"channels": [{**CHANNEL, "secret_key": None}]}, "both access_key and secret_key"),
        ({"channels": [{**CHANNEL, "api_key": SECRET}]}, "not both"),
        ({"channels": [{**CHANNEL, "secret_key": 12345}]}, "channels.0.secret_key"),
        ({"channels": [CHANNEL], "pol_initial": 1}, "pol_initial"),
        ({"channels": [CHANNEL], "media_handoff": "ftp"}, "media_handoff"),
    ],
)
def test_config_problems_name_the_field_never_the_secret(tmp_path: Path, raw: object, problem: str) -> None:
    settings = Settings(data_dir=tmp_path, kling_config=_file(tmp_path, raw))
    with pytest.raises(ConfigError, match=problem) as caught:
        build_kling_provider(settings, _pipeline(tmp_path, settings), env={})
    assert SECRET not in str(caught.value)


def test_env_gives_one_channel_and_plain_http_needs_the_dev_switch(tmp_path: Path) -> None:
    env = {"REELGATE_KLING_API_KEY": SECRET, "REELGATE_KLING_BASE_URL": "http://127.0.0.1:9"}
    strict = Settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="https"):
        build_kling_provider(strict, _pipeline(tmp_path, strict), env=env)
    relaxed = strict.with_changes(allow_private_networks=True)
    provider = build_kling_provider(relaxed, _pipeline(tmp_path, relaxed), env=env)
    assert [c.name for c in provider.pool.all()] == ["default"] and SECRET not in repr(provider)
    with pytest.raises(ConfigError, match="no account"):
        build_kling_provider(strict, _pipeline(tmp_path, strict), env={})


def _channel(name: str, weight: int, *, concurrency: int = 8, rate: float | None = None) -> Channel:
    client = KlingClient("https://kling.invalid", KlingCredentials(api_key="k"))
    return Channel(name, weight, client, concurrency, 0.5, TokenBucket(rate) if rate else None)


def test_weighted_round_robin_skips_unhealthy_zero_weight_and_excluded() -> None:
    pool = ChannelPool([_channel("a", 3), _channel("b", 1), _channel("standby", 0)], cooldown=60)
    picks = [c.name for c in (pool.pick() for _ in range(8)) if c is not None]
    assert picks.count("a") == 6 and picks.count("b") == 2 and "standby" not in picks
    a = pool.get("a")
    assert a is not None
    pool.mark_down(a, 1101)
    assert {pool.pick().name for _ in range(3)} == {"b"}  # type: ignore[union-attr]
    assert pool.pick(exclude=frozenset({"b"})) is None


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0)
    assert [bucket.take(10.0), bucket.take(10.0)] == [0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.5)
    assert bucket.take(10.5) == 0.0


async def test_a_saturated_channel_answers_busy_instead_of_waiting() -> None:
    channel = _channel("a", 1, concurrency=1)
    async with channel.slot():
        with pytest.raises(Busy) as caught:
            async with channel.slot():
                pass
        assert 0.5 <= caught.value.wait <= 0.75
    async with channel.slot():  # released again
        assert channel.in_flight == 1
    assert channel.in_flight == 0
