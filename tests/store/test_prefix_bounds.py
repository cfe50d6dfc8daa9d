"""A burst's two bounds per submit (need, room) make exactly the submits that one-by-one reservation would make
before its account's first refusal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reelgate.store.task_create import NewTask, _prefix_bounds
from store.factories import new_task

Submit = tuple[int, int, int]  # account, price, in-flight cap
submits = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2_000), st.integers(1, 6)), max_size=40)
balances = st.dictionaries(st.integers(1, 3), st.tuples(st.integers(0, 10_000), st.integers(0, 6)))


def _one_by_one(burst: list[NewTask], start: dict[int, tuple[int, int]]) -> list[bool]:
    """Reserve in order; after an account's first refusal, none of its later submits is made by the burst."""
    state = dict(start)
    refused: set[int] = set()
    made = []
    for t in burst:
        available, in_flight = state.get(t.account_id, (0, 0))
        fits = t.account_id not in refused and available >= t.price and in_flight + 1 <= t.max_in_flight
        if fits:
            state[t.account_id] = (available - t.price, in_flight + 1)
        else:
            refused.add(t.account_id)
        made.append(fits)
    return made


@given(submits, balances)
def test_the_bounds_make_what_one_by_one_reservation_makes(
    burst: list[Submit], start: dict[int, tuple[int, int]]
) -> None:
    tasks = [new_task(a, price=price, cap=cap) for a, price, cap in burst]
    needs, rooms = _prefix_bounds(tasks)
    by_bounds = []
    for t, need, room in zip(tasks, needs, rooms, strict=True):
        available, in_flight = start.get(t.account_id, (0, 0))
        by_bounds.append(available >= need and in_flight <= room)
    assert by_bounds == _one_by_one(tasks, start)
