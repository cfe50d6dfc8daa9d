"""Kling, the vendor: its API client (api.py), accounts and limits (channels.py), error codes (codes.py) and the
element provider (provider.py). Built by name through providers/registry.py; nothing outside providers/ imports it.
"""

from __future__ import annotations

from reelgate.assets import AssetStore
from reelgate.catalog.custom_element import MediaPipeline
from reelgate.config import Settings
from reelgate.media.pool import MediaPool
from reelgate.providers import Provider

NAME = "kling"


def build(settings: Settings, assets: AssetStore, pool: MediaPool | None) -> Provider | None:
    """The Kling provider when a model is routed to it or an account file is set; None when not configured."""
    if NAME not in settings.providers.values() and not settings.kling_config:
        return None
    # Loaded only where Kling is configured: its client pulls in aiohttp and the JWT signing.
    from reelgate.providers.kling.provider import build_kling_provider

    return build_kling_provider(settings, MediaPipeline(settings, assets, pool=pool))
