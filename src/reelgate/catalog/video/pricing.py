"""Per-second prices: millicredits per second by user group, quality and sound, and the seconds a request reserves.

Defaults follow EvoLink's published prices at one credit per $0.014 (contract §10); the operator's price file
(REELGATE_PRICES) overrides any of them or prices a tier that has none (a tier without a price is refused).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from reelgate.catalog.spec import Charge
from reelgate.config import ConfigError, PriceOverride
from reelgate.domain import format_credits
from reelgate.params import ParamProblem

CREDIT_USD = 0.014
DEFAULT_GROUP = "default"
NO_SOUND = ""  # the sound tier of a model without a ``sound`` field
Tier = tuple[str, str, str]  # (group, quality, sound)


def millicredits(usd_per_second: float) -> int:
    """A dollar price per second in millicredits per second, rounded to the nearest."""
    return round(usd_per_second / CREDIT_USD * 1000)


def usd_rates(table: Mapping[tuple[str, str], float]) -> dict[Tier, int]:
    """The default group's rates from ``{(quality, sound): dollars per second}``."""
    return {(DEFAULT_GROUP, q, s): millicredits(usd) for (q, s), usd in table.items()}


@dataclass(frozen=True)
class PerSecond:
    """A model's per-second prices. ``seconds`` says how many seconds a parsed request reserves (a module-level
    function: the spec travels pickled)."""

    qualities: tuple[str, ...]
    sounds: tuple[str, ...]  # ("off", "on"), or (NO_SOUND,) for a model without ``sound``
    rates: Mapping[Tier, int]
    seconds: Callable[[BaseModel], int]

    def rate(self, group: str, quality: str, sound: str) -> int | None:
        found = self.rates.get((group, quality, sound))
        return self.rates.get((DEFAULT_GROUP, quality, sound)) if found is None else found

    def charge(self, params: BaseModel, group: str) -> Charge:
        quality = str(getattr(params, "quality", None) or "")
        sound = str(getattr(params, "sound", None) or NO_SOUND) if self.sounds != (NO_SOUND,) else NO_SOUND
        rate = self.rate(group, quality, sound)
        if rate is None:
            if any(self.rate(group, quality, s) is not None for s in self.sounds):
                raise ParamProblem([("sound", f"sound {sound} is not offered with quality {quality} on this "
                                              "deployment (no price is set for it)")])  # fmt: skip
            raise ParamProblem([("quality", f"quality {quality} is not offered for this model on this deployment "
                                            "(no price is set for it)")])  # fmt: skip
        seconds = self.seconds(params)
        return Charge(rate * seconds, {"seconds": seconds})

    def _tiers(self, group: str) -> list[tuple[str, str, int]]:
        priced = [(q, s, self.rate(group, q, s)) for q in self.qualities for s in self.sounds]
        return [(q, s, r) for q, s, r in priced if r is not None]

    def cheapest(self, group: str) -> int | None:
        return min((r for _, _, r in self._tiers(group)), default=None)

    def listing(self, group: str) -> list[dict[str, Any]]:
        out = []
        for quality, sound, rate in self._tiers(group):
            row: dict[str, Any] = {"user_group": group, "unit": "second", "quality": quality}
            if sound != NO_SOUND:
                row["sound"] = sound
            row["price"] = format_credits(rate)
            out.append(row)
        return out

    def overridden(self, model: str, rows: Sequence[PriceOverride]) -> PerSecond:
        rates = dict(self.rates)
        for row in rows:
            where = f"REELGATE_PRICES: the row for {model} (group {row.group})"
            if row.quality not in self.qualities:
                raise ConfigError(f"{where} needs a quality among {', '.join(self.qualities)}, got {row.quality!r}")
            if row.sound is not None and row.sound not in self.sounds:
                choices = ", ".join(self.sounds) if self.sounds != (NO_SOUND,) else "none (the model has no sound)"
                raise ConfigError(f"{where} has sound {row.sound!r}; this model's sound tiers: {choices}")
            for sound in self.sounds if row.sound is None else (row.sound,):
                rates[(row.group, row.quality, sound)] = row.millicredits
        return replace(self, rates=rates)


def requested_seconds(params: BaseModel) -> int:
    """The seconds of a model billed on the ``duration`` it is asked for."""
    return int(getattr(params, "duration"))  # noqa: B009 - every such model has one; mypy cannot know which
