"""Kling accounts ("channels"): configuration from a 0600 JSON file or the environment, health, limits, selection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from reelgate.config import ConfigError
from reelgate.providers.kling.api import KlingClient, KlingCredentials

log = logging.getLogger("reelgate.kling")
DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
ENV_KEYS = ("REELGATE_KLING_ACCESS_KEY", "REELGATE_KLING_SECRET_KEY", "REELGATE_KLING_API_KEY")
Clock = Callable[[], float]


class ChannelConfig(BaseModel):
    """One Kling account. Secrets are ``SecretStr``: they print as ``**********``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    base_url: str = DEFAULT_BASE_URL
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    api_key: SecretStr | None = None
    weight: int = Field(default=1, ge=0, le=1000)
    # Upstream tasks in flight on this account (submitted or processing at Kling), across every worker process.
    concurrency: int = Field(default=8, ge=1, le=100_000)
    # Requests in flight to this account from one process (creates, lookups, polls, deletes).
    request_concurrency: int = Field(default=8, ge=1, le=10_000)
    rate_limit: float | None = Field(default=None, gt=0, le=10_000)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or len(value) > 300:
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    def credentials(self) -> KlingCredentials:
        def reveal(secret: SecretStr | None) -> str:
            return secret.get_secret_value() if secret is not None else ""

        try:
            return KlingCredentials(reveal(self.access_key), reveal(self.secret_key), reveal(self.api_key))
        except ValueError as exc:  # the message names fields, never values
            raise ConfigError(f"Kling channel {self.name!r}: {exc}") from None


class VideoRoute(BaseModel):
    """Where one EvoLink video model goes at Kling: the endpoint and the upstream ``model_name`` (Kling renames
    models, so both are configuration; defaults in providers/kling/video.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: Literal["text2video", "image2video", "motion-control", "omni-video"]
    model_name: str = Field(min_length=1, max_length=100)


class KlingConfig(BaseModel):
    """The whole Kling provider configuration (times in seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[ChannelConfig] = Field(min_length=1, max_length=100)
    media_handoff: Literal["base64", "url"] = "base64"
    poll_initial: float = Field(default=1.0, gt=0, le=600)
    poll_factor: float = Field(default=2.0, ge=1, le=10)
    poll_max: float = Field(default=30.0, gt=0, le=3600)
    retry_initial: float = Field(default=1.0, gt=0, le=600)
    retry_max: float = Field(default=30.0, gt=0, le=3600)
    max_retries: int = Field(default=8, ge=1, le=1000)
    create_settle: float = Field(default=60.0, ge=0, le=3600)
    cooldown: float = Field(default=60.0, ge=0, le=86_400)
    busy_delay: float = Field(default=0.5, gt=0, le=60)
    request_timeout: float = Field(default=30.0, gt=0, le=600)
    callback_base_url: str | None = None
    callback_secret: SecretStr | None = None
    video_models: dict[str, VideoRoute] = Field(default_factory=dict)  # overrides of the default routes
    result_max_bytes: int = Field(default=2 * 1024**3, ge=1024, le=64 * 1024**3)
    download_timeout: float = Field(default=30.0, gt=0, le=600)  # connect, and each read, of a result download
    download_total: float = Field(default=1800.0, gt=0, le=86_400)  # one result download, start to end
    download_retries: int = Field(default=6, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> KlingConfig:
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique")
        if (self.callback_base_url is None) != (self.callback_secret is None):
            raise ValueError("callback_base_url and callback_secret go together")
        if self.callback_secret is not None and len(self.callback_secret.get_secret_value()) < 16:
            raise ValueError("callback_secret must be at least 16 characters")
        if self.callback_base_url is not None and not self.callback_base_url.startswith(("https://", "http://")):
            raise ValueError("callback_base_url must be an http(s) URL")
        return self


def _validated(raw: Any, origin: str) -> KlingConfig:
    try:
        return KlingConfig.model_validate(raw)
    except ValidationError as exc:
        # Only the location and the rule: pydantic's own text could echo an input value, i.e. a secret.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None


def load_config_file(path: str) -> KlingConfig:
    """Read the JSON config; refuse a file group or others may read or write (it holds account secrets)."""
    origin = f"REELGATE_KLING_CONFIG ({path})"
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{origin} cannot be read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{origin} has mode {stat.S_IMODE(mode):04o}; it holds Kling secrets, so it must not be "
                          f"accessible to group or others: run chmod 600 {path}")  # fmt: skip
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{origin} is not valid JSON: {exc}") from None
    return _validated(raw, origin)


def config_from_env(env: Mapping[str, str]) -> KlingConfig | None:
    """A one-channel config from ``REELGATE_KLING_*`` variables, or None when no credentials are set."""
    if not any(env.get(k) for k in ENV_KEYS):
        return None
    channel: dict[str, Any] = {"name": "default", "base_url": env.get("REELGATE_KLING_BASE_URL") or DEFAULT_BASE_URL}
    for key in ("access_key", "secret_key", "api_key"):
        if env.get(f"REELGATE_KLING_{key.upper()}"):
            channel[key] = env[f"REELGATE_KLING_{key.upper()}"]
    raw: dict[str, Any] = {"channels": [channel]}
    if env.get("REELGATE_KLING_MEDIA_HANDOFF"):
        raw["media_handoff"] = env["REELGATE_KLING_MEDIA_HANDOFF"]
    return _validated(raw, "REELGATE_KLING_* environment")


class Busy(Exception):
    """The channel is at its concurrency cap or rate limit; try again after ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"channel busy for {wait:.2f} s")
        self.wait = wait


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``max(1, rate)`` saved up; in-process only."""

    rate: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        burst = max(1.0, self.rate)
        if self.tokens < 0:
            self.tokens, self.stamp = burst, now
        self.tokens = min(burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(repr=False)
class Channel:
    """One account's client plus its in-process state: requests in flight, rate bucket, out-of-rotation time.

    ``request_limit`` bounds this process's requests in flight; ``cap`` is the account's upstream tasks in flight,
    held across processes by the upstream slots (providers/upstream.py), not here.
    """

    name: str
    weight: int
    client: KlingClient
    request_limit: int
    busy_delay: float
    bucket: TokenBucket | None = None
    clock: Clock = time.monotonic
    in_flight: int = 0
    down_until: float = 0.0
    down_reason: str = ""  # why it was last taken out of rotation (the Kling code)
    current: float = field(default=0.0)  # smooth weighted round-robin counter
    cap: int = 8

    @property
    def slot_key(self) -> str:
        """The channel's name among every vendor's upstream slots."""
        return f"kling:{self.name}"

    def __repr__(self) -> str:
        return f"Channel({self.name!r}, weight={self.weight}, in_flight={self.in_flight})"

    def healthy(self) -> bool:
        return self.clock() >= self.down_until

    def _try_acquire(self) -> float:
        if self.in_flight >= self.request_limit:
            return self.busy_delay
        wait = self.bucket.take(self.clock()) if self.bucket is not None else 0.0
        if wait == 0.0:
            self.in_flight += 1
        return wait

    @contextlib.asynccontextmanager
    async def slot(self, max_wait: float = 0.0) -> AsyncIterator[None]:
        """Hold one request slot; raise :class:`Busy` at once (or after ``max_wait`` s) when saturated.

        A counter, not an ``asyncio.Semaphore``: a saturated channel must never park a worker coroutine.
        """
        deadline = self.clock() + max_wait
        while (wait := self._try_acquire()) > 0:
            if self.clock() + wait > deadline:
                raise Busy(wait * (1 + random.random() / 2))  # jitter spreads the re-runs of many tasks
            await asyncio.sleep(wait)
        try:
            yield
        finally:
            self.in_flight -= 1


class ChannelPool:
    """Every configured channel; picks healthy ones by smooth weighted round-robin (deterministic, even)."""

    def __init__(self, channels: list[Channel], cooldown: float, clock: Clock = time.monotonic) -> None:
        self._channels = {c.name: c for c in channels}
        self._cooldown = cooldown
        self._clock = clock

    def __repr__(self) -> str:
        return f"ChannelPool({list(self._channels)})"

    def get(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def all(self) -> list[Channel]:
        return list(self._channels.values())

    def pick(self, exclude: frozenset[str] = frozenset()) -> Channel | None:
        """The next healthy channel with weight > 0 not in ``exclude``, or None when there is none."""
        ready = [c for c in self._channels.values() if c.weight > 0 and c.healthy() and c.name not in exclude]
        if not ready:
            return None
        total = sum(c.weight for c in ready)
        for c in ready:
            c.current += c.weight
        chosen = max(ready, key=lambda c: c.current)
        chosen.current -= total
        return chosen

    def mark_down(self, channel: Channel, code: int | None) -> None:
        """Take a channel out of rotation for the cooldown (account, auth or IP-policy problem)."""
        channel.down_until = self._clock() + self._cooldown
        channel.down_reason = f"Kling answered code {code}" if code is not None else "Kling refused the account"
        log.warning("Kling channel taken out of rotation", extra={"channel": channel.name, "kling_code": code,
                                                                   "seconds": self._cooldown})  # fmt: skip

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.client.aclose()


def build_pool(config: KlingConfig, *, allow_http: bool, clock: Clock = time.monotonic) -> ChannelPool:
    """Clients for every channel; plain http is refused unless the development switch allows private networks."""
    for c in config.channels:
        if c.base_url.startswith("http://") and not allow_http:
            raise ConfigError(f"Kling channel {c.name!r}: base_url must use https (secrets would travel in clear)")
    credentials = [c.credentials() for c in config.channels]  # every problem is reported before any client exists
    channels = []
    for c, creds in zip(config.channels, credentials, strict=True):
        client = KlingClient(c.base_url, creds, timeout=config.request_timeout)
        bucket = TokenBucket(c.rate_limit) if c.rate_limit else None
        channels.append(Channel(c.name, c.weight, client, c.request_concurrency, config.busy_delay, bucket, clock,
                                cap=c.concurrency))  # fmt: skip
    return ChannelPool(channels, config.cooldown, clock)
