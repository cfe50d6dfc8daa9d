"""Providers by name: the one list of them. Configuration (REELGATE_PROVIDERS, model=name) names one; the
composition root builds the configured ones from here, and nothing else lists them.

A new vendor: a folder providers/<vendor>/ whose ``build(settings, assets, pool)`` returns its provider, or None
when the deployment does not configure it, and one line in ``builders``.
"""

from __future__ import annotations

from collections.abc import Callable

from reelgate.assets import AssetStore
from reelgate.config import ConfigError, Settings
from reelgate.media.pool import MediaPool
from reelgate.providers import Provider, kling, local
from reelgate.providers.upstream import UpstreamSlots

# settings, stored media, the media pool, and the upstream slots shared by every process (None: one process only)
ProviderBuilder = Callable[[Settings, AssetStore, MediaPool | None, UpstreamSlots | None], Provider | None]


def builders() -> dict[str, ProviderBuilder]:
    return {
        local.NAME: local.build,
        kling.NAME: kling.build,
    }


def check_names(settings: Settings, known: dict[str, ProviderBuilder]) -> None:
    """Every provider REELGATE_PROVIDERS routes a model to must exist: the error names the variable."""
    for model, name in settings.providers.items():
        if name not in known:
            raise ConfigError(f"REELGATE_PROVIDERS entries must look like model={'|'.join(known)}, "
                              f"got {f'{model}={name}'!r}")  # fmt: skip


def build_providers(settings: Settings, assets: AssetStore, pool: MediaPool | None = None,
                    slots: UpstreamSlots | None = None) -> dict[str, Provider]:  # fmt: skip
    """The providers this deployment configures, by name."""
    known = builders()
    check_names(settings, known)
    built = {name: build(settings, assets, pool, slots) for name, build in known.items()}
    return {name: provider for name, provider in built.items() if provider is not None}
