"""Providers by name: configuration names one, the registry builds the configured ones and refuses unknown names."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelgate.assets import AssetStore
from reelgate.config import ConfigError, Settings
from reelgate.providers import DeletesElements, VerifiesHooks
from reelgate.providers.registry import build_providers
from reelgate.storage import DirectoryStorage


def _assets(tmp_path: Path) -> AssetStore:
    return AssetStore(DirectoryStorage(tmp_path / "assets"))


def test_an_unknown_provider_name_is_refused_naming_the_variable(tmp_path: Path) -> None:
    settings = Settings.from_env({"REELGATE_PROVIDERS": "kling-custom-element=nope"})
    with pytest.raises(ConfigError) as caught:
        build_providers(settings, _assets(tmp_path))
    assert (
        str(caught.value)
        == "REELGATE_PROVIDERS entries must look like model=local|kling, got 'kling-custom-element=nope'"
    )


def test_a_malformed_entry_is_refused_when_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REELGATE_PROVIDERS"):
        Settings.from_env({"REELGATE_PROVIDERS": "kling-custom-element"})


async def test_only_configured_providers_are_built_and_local_has_no_optional_capability(tmp_path: Path) -> None:
    built = build_providers(Settings(data_dir=tmp_path), _assets(tmp_path))
    assert list(built) == ["local"]
    local = built["local"]
    assert not isinstance(local, DeletesElements) and not isinstance(local, VerifiesHooks)
    await local.aclose()
