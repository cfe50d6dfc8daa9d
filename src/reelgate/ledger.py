"""Pure credit arithmetic: what reserve, capture, release and grant do to a balance (amounts in millicredits)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Final

GRANT: Final = "grant"
RESERVE: Final = "reserve"
CAPTURE: Final = "capture"
RELEASE: Final = "release"


def partial_capture(reserved: int, seconds: int, billed: float) -> int:
    """What a per-second task that reserved ``reserved`` for ``seconds`` captures when it made ``billed`` seconds:
    round-up(reserved x billed / seconds), never more than the reservation. Exact: the float is read as the decimal
    it prints as (4.2 is 42/10, not the binary number nearest to it), so no millicredit is gained or lost."""
    if seconds <= 0 or not math.isfinite(billed):
        return reserved
    amount = math.ceil(Fraction(reserved) * Fraction(repr(float(billed))) / seconds)
    return max(0, min(reserved, amount))


class CreditRuleBroken(ValueError):
    """An operation would break a credit rule (negative amount, balance below zero, unknown reservation)."""


@dataclass(frozen=True)
class Balance:
    """``granted == available + reserved + captured`` always holds; none of them is ever negative."""

    available: int = 0
    reserved: int = 0
    captured: int = 0

    @property
    def granted(self) -> int:
        return self.available + self.reserved + self.captured

    def grant(self, amount: int) -> Balance:
        if amount <= 0:
            raise CreditRuleBroken("a grant must be positive")
        return replace(self, available=self.available + amount)

    def reserve(self, amount: int) -> Balance:
        if amount < 0:
            raise CreditRuleBroken("a price cannot be negative")
        if amount > self.available:
            raise CreditRuleBroken("not enough credits")
        return replace(self, available=self.available - amount, reserved=self.reserved + amount)

    def capture(self, amount: int) -> Balance:
        if not 0 <= amount <= self.reserved:
            raise CreditRuleBroken("cannot capture more than is reserved")
        return replace(self, reserved=self.reserved - amount, captured=self.captured + amount)

    def release(self, amount: int) -> Balance:
        if not 0 <= amount <= self.reserved:
            raise CreditRuleBroken("cannot release more than is reserved")
        return replace(self, reserved=self.reserved - amount, available=self.available + amount)
