"""The video routes are configuration: an override reaches Kling, an unknown model name is refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.kling_server import FakeKling
from fakes.mediagen import mp4
from kling.harness import AK, SK, channel, gateway, settings_for, write_config
from reelgate.config import ConfigError
from reelgate.errors import MediaError
from reelgate.providers.kling.inputs import VideoRules, check_video
from reelgate.runtime import build_runtime
from reelgate.service import Submission


async def test_a_route_override_reaches_kling(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    routes = {"kling-o3-text-to-video": {"endpoint": "omni-video", "model_name": "kling-video-o1"}}
    config = write_config(tmp_path / "kling.json", [channel("main", fake)], video_models=routes)
    async with gateway(settings_for(tmp_path, db_url, config)) as gate:
        await gate.rt.store.accounts.grant(gate.owner.account_id, 1_000_000, "test")
        body = {"model": "kling-o3-text-to-video", "prompt": "an owl", "duration": 5}
        task = await gate.wait((await gate.rt.service.submit(Submission(body, gate.owner))).id, timeout=20)
    assert task.status == "completed", (task.error_code, task.error_message)
    (created,) = fake.video_tasks("omni-video")
    assert created.body["model_name"] == "kling-video-o1"


def test_an_unknown_model_in_the_routes_is_refused(tmp_path: Path, db_url: str, fake: FakeKling) -> None:
    routes = {"kling-v3-text-to-vdeo": {"endpoint": "text2video", "model_name": "kling-v3"}}
    config = write_config(tmp_path / "kling.json", [channel("main", fake)], video_models=routes)
    with pytest.raises(ConfigError, match="kling-v3-text-to-vdeo"):
        build_runtime(settings_for(tmp_path, db_url, config))


@pytest.mark.parametrize(
    ("video", "rules", "problem"),
    [
        (mp4(1280, 720, seconds=2, fps=8), VideoRules(), "must be at least 3 seconds long"),
        (mp4(1280, 720, seconds=4, fps=8), VideoRules(max_seconds=3), "must be 3-3 seconds long"),
        (mp4(640, 360, seconds=3, fps=8), VideoRules(), "width and height within 720-2160 px"),
        (b"\x00\x00\x00\x18moovjunkjunkjunk", VideoRules(), "must be an MP4 or MOV video"),
        (mp4(1280, 720, seconds=3, fps=8), VideoRules(max_bytes=100), "is larger than"),
    ],
)
def test_input_video_rules_name_the_field_and_the_rule(video: bytes, rules: VideoRules, problem: str) -> None:
    with pytest.raises(MediaError) as refused:
        check_video(video, "video_url", rules)
    assert refused.value.message.startswith("video_url ") and problem in refused.value.message
    assert refused.value.code == "invalid_parameters"


def test_a_good_input_video_reports_its_length() -> None:
    facts = check_video(mp4(720, 1280, seconds=3, fps=8), "video_urls[0]", VideoRules())
    assert (facts.width, facts.height, facts.ext) == (720, 1280, "mp4") and abs(facts.duration - 3) < 0.2


async def test_the_environment_alone_offers_the_video_models(
    tmp_path: Path, db_url: str, fake: FakeKling, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELGATE_KLING_ACCESS_KEY", AK)
    monkeypatch.setenv("REELGATE_KLING_SECRET_KEY", SK)
    monkeypatch.setenv("REELGATE_KLING_BASE_URL", fake.base_url)
    settings = settings_for(tmp_path, db_url, "", providers={})
    async with gateway(settings) as gate:
        assert "kling" in gate.rt.providers
        await gate.rt.store.accounts.grant(gate.owner.account_id, 1_000_000, "test")
        body = {"model": "kling-v3-text-to-video", "prompt": "an owl", "duration": 3}
        task = await gate.wait((await gate.rt.service.submit(Submission(body, gate.owner))).id, timeout=20)
    assert task.status == "completed", (task.error_code, task.error_message)
