"""Kling, the vendor: its API client (api.py), accounts and limits (channels.py), error codes (codes.py), the task
flow every Kling task shares (flow.py), and the one provider named "kling" (provider.py) that runs the element
model and the video models (video.py). Built by name through providers/registry.py; nothing outside providers/
imports it.
"""

from __future__ import annotations

import os

from reelgate.assets import AssetStore
from reelgate.catalog.custom_element import MediaPipeline
from reelgate.config import Settings
from reelgate.media.pool import MediaPool
from reelgate.providers import Provider
from reelgate.providers.upstream import UpstreamSlots

NAME = "kling"
# A channel from the environment alone configures Kling too (channels.ENV_KEYS; named here so that checking it does
# not load the client).
_ENV_KEYS = ("REELGATE_KLING_ACCESS_KEY", "REELGATE_KLING_SECRET_KEY", "REELGATE_KLING_API_KEY")


def build(settings: Settings, assets: AssetStore, pool: MediaPool | None,
          slots: UpstreamSlots | None = None) -> Provider | None:  # fmt: skip
    """The Kling provider when a channel is configured (the channels file or ``REELGATE_KLING_*``) or a model is
    routed to it; None otherwise."""
    from_env = any(os.environ.get(key) for key in _ENV_KEYS)
    if NAME not in settings.providers.values() and not settings.kling_config and not from_env:
        return None
    # Loaded only where Kling is configured: its client pulls in aiohttp and the JWT signing.
    from reelgate.providers.kling.provider import build_kling_provider

    return build_kling_provider(settings, MediaPipeline(settings, assets, pool=pool), slots=slots)
