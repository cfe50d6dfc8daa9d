"""Fixtures for the Kling provider tests: the fake Kling server and two distinct test images."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from fakes.kling_server import FakeKling
from fakes.mediagen import jpeg
from kling.harness import AK, AK_B, SK, SK_B


@pytest.fixture(scope="session")
def images() -> tuple[str, str]:
    """A frontal and a visibly different refer image, as bare Base64."""
    return base64.b64encode(jpeg(768, 1024, scene=1)).decode(), base64.b64encode(jpeg(768, 1024, scene=2)).decode()


@pytest.fixture
def fake() -> Iterator[FakeKling]:
    with FakeKling(access_keys={AK: SK, AK_B: SK_B}) as server:
        yield server
