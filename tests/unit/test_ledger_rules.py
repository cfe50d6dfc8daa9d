"""The pure credit rules under hypothesis: no sequence of operations breaks the invariant or goes negative."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelgate.ledger import Balance, CreditRuleBroken

ops = st.lists(st.tuples(st.sampled_from(["grant", "reserve", "capture", "release"]), st.integers(-5, 5000)),
               max_size=60)  # fmt: skip


@given(ops)
def test_invariant_holds_and_nothing_goes_negative(steps: list[tuple[str, int]]) -> None:
    balance = Balance()
    granted = 0
    for op, amount in steps:
        try:
            balance = getattr(balance, op)(amount)
        except CreditRuleBroken:
            continue
        granted += amount if op == "grant" else 0
        assert min(balance.available, balance.reserved, balance.captured) >= 0
        assert balance.granted == granted


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_reserve_never_exceeds_available(available: int, price: int) -> None:
    start = Balance(available=available)
    if price > available:
        with pytest.raises(CreditRuleBroken):
            start.reserve(price)
    else:
        assert start.reserve(price).available == available - price
