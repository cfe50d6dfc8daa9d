"""The SSRF corpus as data, under default settings: every spelling is refused as a callback URL at submit and as
a media URL by the fetcher, without a single connection being made."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness import Api, auth, b64_jpeg, image_body, make_settings, open_api
from reelgate.errors import MediaError
from reelgate.media.fetch import FetchLimits, load_media, make_fetch_client
from unit.test_netguard import BAD_URLS

FRONT, SIDE = b64_jpeg(1), b64_jpeg(2)


@pytest.fixture
async def strict_api(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Api]:
    shutil.copy(sqlite_template, tmp_path / "db.sqlite")
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", allow_private_networks=False)
    async with open_api(settings) as api:
        yield api


async def test_every_spelling_is_refused_as_a_callback(strict_api: Api) -> None:
    key = await strict_api.key(credits=1)
    assert len(BAD_URLS) >= 40
    for url in BAD_URLS:
        callback = url.replace("http://", "https://", 1)
        r = await strict_api.submit(key, {**image_body(FRONT, SIDE), "callback_url": callback})
        assert r.status_code == 400 and r.json()["error"]["param"] == "callback_url", (callback, r.text)
    assert (await strict_api.client.get("/v1/tasks", headers=auth(key))).json()["data"] == []


async def test_every_spelling_is_refused_as_media() -> None:
    limits = FetchLimits(max_bytes=10_000_000, connect_timeout=1, read_timeout=1, total_timeout=2)
    client = make_fetch_client(allow_private=False, limits=limits)
    try:
        for url in BAD_URLS:
            with pytest.raises(MediaError) as refused:
                await load_media(url, field="model_params.element_image_list.frontal_image", kind="image",
                                 limits=limits, client=client, allow_private=False)  # fmt: skip
            assert refused.value.code == "image_processing_error" and refused.value.param is not None
            # Refused plainly, naming no server setting (no variable names, no allow-list).
            message = refused.value.message
            assert "REELGATE" not in message and "allow" not in message.lower(), message
    finally:
        await client.aclose()
