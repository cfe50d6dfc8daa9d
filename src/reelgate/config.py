"""Frozen settings read from ``REELGATE_*`` environment variables once, by the CLI, and passed down."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

MB = 1024 * 1024


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _num(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _num(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {env.get(name)!r}")
    return value


def _processes(raw: str) -> int:
    """REELGATE_WORKER_PROCESSES: ``auto`` or empty (one per CPU, -1), or a whole number of at least 0."""
    if raw.strip().lower() in ("", "auto"):
        return -1
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"REELGATE_WORKER_PROCESSES must be 'auto' or a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"REELGATE_WORKER_PROCESSES must be 'auto' or at least 0, got {raw!r}")
    return value


def _providers(raw: str) -> dict[str, str]:
    """Parse ``model=provider,model=provider``; the names are checked against the provider registry when the
    providers are built (providers/registry.py), so configuration lists no vendor."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        model, sep, provider = part.partition("=")
        if not sep or not model.strip() or not provider.strip():
            raise ConfigError(f"REELGATE_PROVIDERS entries must look like model=provider, got {part!r}")
        out[model.strip()] = provider.strip()
    return out


def _storage_url(raw: str) -> str:
    """``file:///absolute/path`` or ``s3://bucket[/prefix]`` (contract 11); empty: the data directory's assets."""
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return raw
    if parts.scheme == "s3" and parts.netloc and not parts.query and not parts.fragment:
        return raw
    raise ConfigError(f"REELGATE_STORAGE_URL must be file:///absolute/path or s3://bucket/prefix, got {raw!r}")


def _metrics_token(raw: str) -> str:
    if raw and (len(raw) < 16 or not all("!" <= ch <= "~" for ch in raw)):
        raise ConfigError("REELGATE_METRICS_TOKEN must be at least 16 visible ASCII characters (no spaces)")
    return raw


def _liveness(env: Mapping[str, str], d: Settings) -> dict[str, float]:
    beat = _positive(env, "REELGATE_HEARTBEAT_SECONDS", d.heartbeat_seconds)
    alive = _positive(env, "REELGATE_LIVENESS_SECONDS", d.liveness_seconds)
    if alive <= beat:  # a process would count as dead between two of its own heartbeats
        raise ConfigError(f"REELGATE_LIVENESS_SECONDS ({alive:g}) must be more than REELGATE_HEARTBEAT_SECONDS "
                          f"({beat:g})")  # fmt: skip
    stall = _positive(env, "REELGATE_STALL_SECONDS", d.stall_seconds)
    return {"heartbeat_seconds": beat, "liveness_seconds": alive, "stall_seconds": stall}


@dataclass(frozen=True)
class PriceOverride:
    """One row of the operator's price file: a model's price for a user group (and a quality/sound tier)."""

    model: str
    group: str
    millicredits: int  # per second for per_second models, per call for per_call ones
    quality: str | None = None
    sound: str | None = None  # None: every sound tier of the quality


_PRICE_KEYS = {"model", "group", "quality", "sound", "millicredits"}


def _price_row(raw: Any, where: str) -> PriceOverride:
    if not isinstance(raw, dict) or not raw.keys() <= _PRICE_KEYS:
        raise ConfigError(f"{where} must be an object with keys among {sorted(_PRICE_KEYS)}")
    model, group = raw.get("model"), raw.get("group", "default")
    amount, quality, sound = raw.get("millicredits"), raw.get("quality"), raw.get("sound")
    if not isinstance(model, str) or not model or not isinstance(group, str) or not group:
        raise ConfigError(f"{where}: model and group must be non-empty strings")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= 10**9:
        raise ConfigError(f"{where}: millicredits must be a whole number from 0 to 1000000000")
    if not all(v is None or (isinstance(v, str) and v) for v in (quality, sound)):
        raise ConfigError(f"{where}: quality and sound must be non-empty strings when given")
    return PriceOverride(model, group, amount, quality, sound)


def load_prices(path: str) -> tuple[PriceOverride, ...]:
    """The operator's price file (REELGATE_PRICES): ``{"prices": [{"model", "group"?, "quality"?, "sound"?,
    "millicredits"}, ...]}``. The catalogue checks that each row names a model and tier it has."""
    if not path:
        return ()
    origin = f"REELGATE_PRICES ({path})"
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{origin} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{origin} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("prices"), list):
        raise ConfigError(f'{origin} must be an object {{"prices": [...]}}')
    return tuple(_price_row(row, f"{origin} prices[{i}]") for i, row in enumerate(raw["prices"]))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("reelgate-data")
    database_url: str = ""
    allow_private_networks: bool = False
    public_base_url: str = ""
    max_body_bytes: int = 64 * MB
    image_max_bytes: int = 10 * MB
    video_max_bytes: int = 200 * MB
    fetch_connect_timeout: float = 5.0
    fetch_read_timeout: float = 15.0
    fetch_total_timeout: float = 60.0
    task_deadline: float = 900.0
    lease_seconds: float = 30.0
    worker_concurrency: int = 4
    worker_poll_interval: float = 0.5
    # Processes that run tasks (docs/deployment.md): -1 = one per CPU this process may use; 0 = none apart (serve runs
    # tasks inside its API process, worker in its own process); N = that many, started and watched by serve/worker.
    worker_processes: int = -1
    fetches_per_task: int = 4  # media items of one task fetched at once
    fetches_per_host: int = 8  # media fetches at once to one origin host, per process, across its tasks
    media_threads: int = 2  # CPU media jobs (decode, hash, probe) at once in a worker process, on threads
    callback_timeout: float = 10.0
    callback_retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0)
    callback_account_concurrency: int = 8  # callback attempts one account may have in flight at once
    callback_ca_bundle: str = ""
    key_cache_ttl: float = 1.0
    default_estimated_time: int = 30
    providers: dict[str, str] = field(default_factory=dict)
    kling_config: str = ""
    redis_url: str = ""
    rate_limit_per_minute: int = 6000
    max_in_flight: int = 1000
    media_processes: int = 0  # processes checking Base64 media (0: one per CPU this process may use)
    uploads_per_account: int = 2  # Base64 submits one account may have being checked at once, per API process
    log_level: str = "INFO"
    log_json: bool = True
    access_log: bool = True  # one reelgate.access line per request (costs the hot GET about a fifth at INFO)
    secret_key: str = field(default="", repr=False)
    metrics_token: str = field(default="", repr=False)  # when set, /metrics needs "Authorization: Bearer <it>"
    prices: tuple[PriceOverride, ...] = ()  # the operator's price file (REELGATE_PRICES), over the catalogue's
    # Stored media (contract 11): file:///path (default <data dir>/assets) or s3://bucket/prefix, and for S3 the
    # endpoint of a non-AWS server and the standard AWS variables (empty: botocore's own chain, e.g. a role).
    storage_url: str = ""
    s3_endpoint_url: str = ""
    s3_presign_seconds: int = 0  # > 0: GET /assets/<name> redirects to a presigned URL valid this long
    aws_region: str = ""
    aws_access_key_id: str = field(default="", repr=False)
    aws_secret_access_key: str = field(default="", repr=False)
    aws_session_token: str = field(default="", repr=False)
    file_retention_hours: float = 72.0  # how long a file of the file API (/api/v1/files) lives (docs/files.md)
    file_quota: int = 2000  # files one account may keep at once through the file API
    # Generated results (the video models' videos) are served this long after they are made, then answer 410
    # and are swept (docs/uploads.md); element media live as long as their element.
    result_retention_days: float = 30.0
    # A write that never finished (a process killed mid-upload: an S3 multipart upload, a directory's temporary
    # file) is discarded by the hourly sweep once it began this long ago; keep it above the longest legitimate
    # write (a Kling result download may take up to its download_total, 30 min by default).
    incomplete_upload_hours: float = 24.0
    # Liveness (docs/deployment.md): workers and dispatchers heartbeat every heartbeat_seconds; one is alive while its
    # last heartbeat is at most liveness_seconds old; the backlog is stalled when no worker is alive or the oldest
    # waiting task has waited more than stall_seconds.
    heartbeat_seconds: float = 5.0
    liveness_seconds: float = 30.0
    stall_seconds: float = 120.0

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'reelgate.db').resolve()}"

    @property
    def assets_dir(self) -> Path:
        """The directory backend's root: REELGATE_STORAGE_URL's path when it is a file URL, else the default."""
        if self.storage_url.startswith("file:"):
            return Path(unquote(urlsplit(self.storage_url).path))
        return self.data_dir / "assets"

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        delays = env.get("REELGATE_CALLBACK_RETRY_DELAYS", "")
        return cls(
            data_dir=Path(env.get("REELGATE_DATA_DIR") or d.data_dir),
            database_url=env.get("REELGATE_DATABASE_URL", ""),
            allow_private_networks=_bool(env, "REELGATE_ALLOW_PRIVATE_NETWORKS", False),
            public_base_url=env.get("REELGATE_PUBLIC_BASE_URL", "").rstrip("/"),
            max_body_bytes=int(_num(env, "REELGATE_MAX_BODY_BYTES", d.max_body_bytes)),
            image_max_bytes=int(_num(env, "REELGATE_IMAGE_MAX_BYTES", d.image_max_bytes)),
            video_max_bytes=int(_num(env, "REELGATE_VIDEO_MAX_BYTES", d.video_max_bytes)),
            fetch_connect_timeout=_num(env, "REELGATE_FETCH_CONNECT_TIMEOUT", d.fetch_connect_timeout),
            fetch_read_timeout=_num(env, "REELGATE_FETCH_READ_TIMEOUT", d.fetch_read_timeout),
            fetch_total_timeout=_num(env, "REELGATE_FETCH_TOTAL_TIMEOUT", d.fetch_total_timeout),
            task_deadline=_num(env, "REELGATE_TASK_DEADLINE", d.task_deadline),
            lease_seconds=_num(env, "REELGATE_LEASE_SECONDS", d.lease_seconds),
            worker_concurrency=max(1, int(_num(env, "REELGATE_WORKER_CONCURRENCY", d.worker_concurrency))),
            worker_poll_interval=_num(env, "REELGATE_WORKER_POLL_INTERVAL", d.worker_poll_interval),
            worker_processes=_processes(env.get("REELGATE_WORKER_PROCESSES", "")),
            fetches_per_task=int(_positive(env, "REELGATE_FETCHES_PER_TASK", d.fetches_per_task)),
            fetches_per_host=int(_positive(env, "REELGATE_FETCHES_PER_HOST", d.fetches_per_host)),
            media_threads=int(_positive(env, "REELGATE_MEDIA_THREADS", d.media_threads)),
            callback_timeout=_num(env, "REELGATE_CALLBACK_TIMEOUT", d.callback_timeout),
            callback_retry_delays=(tuple(float(x) for x in delays.split(",")) if delays else d.callback_retry_delays),
            callback_account_concurrency=max(
                1, int(_num(env, "REELGATE_CALLBACK_ACCOUNT_CONCURRENCY", d.callback_account_concurrency))
            ),
            callback_ca_bundle=env.get("REELGATE_CALLBACK_CA_BUNDLE", ""),
            key_cache_ttl=_num(env, "REELGATE_KEY_CACHE_TTL", d.key_cache_ttl),
            default_estimated_time=int(_num(env, "REELGATE_DEFAULT_ESTIMATED_TIME", 30)),
            providers=_providers(env.get("REELGATE_PROVIDERS", "")),
            kling_config=env.get("REELGATE_KLING_CONFIG", ""),
            redis_url=env.get("REELGATE_REDIS_URL", ""),
            rate_limit_per_minute=int(_num(env, "REELGATE_RATE_LIMIT_PER_MINUTE", d.rate_limit_per_minute)),
            max_in_flight=int(_num(env, "REELGATE_MAX_IN_FLIGHT", d.max_in_flight)),
            media_processes=int(_num(env, "REELGATE_MEDIA_PROCESSES", d.media_processes)),
            uploads_per_account=max(1, int(_num(env, "REELGATE_UPLOADS_PER_ACCOUNT", d.uploads_per_account))),
            log_level=env.get("REELGATE_LOG_LEVEL", d.log_level).upper(),
            log_json=_bool(env, "REELGATE_LOG_JSON", True),
            access_log=_bool(env, "REELGATE_ACCESS_LOG", True),
            secret_key=env.get("REELGATE_SECRET_KEY", ""),
            metrics_token=_metrics_token(env.get("REELGATE_METRICS_TOKEN", "")),
            prices=load_prices(env.get("REELGATE_PRICES", "")),
            storage_url=_storage_url(env.get("REELGATE_STORAGE_URL", "")),
            s3_endpoint_url=env.get("REELGATE_S3_ENDPOINT_URL", "").rstrip("/"),
            s3_presign_seconds=int(_num(env, "REELGATE_S3_PRESIGN_SECONDS", d.s3_presign_seconds)),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION", ""),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", ""),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
            aws_session_token=env.get("AWS_SESSION_TOKEN", ""),
            file_retention_hours=_positive(env, "REELGATE_FILE_RETENTION_HOURS", d.file_retention_hours),
            file_quota=int(_positive(env, "REELGATE_FILE_QUOTA", d.file_quota)),
            result_retention_days=_positive(env, "REELGATE_RESULT_RETENTION_DAYS", d.result_retention_days),
            incomplete_upload_hours=_num(env, "REELGATE_INCOMPLETE_UPLOAD_HOURS", d.incomplete_upload_hours),
            **_liveness(env, d),
        )
