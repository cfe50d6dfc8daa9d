"""The retry schedule as shipped: the defaults (in code and from an empty environment) give the contract's times."""

from __future__ import annotations

import pytest

from reelgate.config import Settings
from reelgate.dispatcher import retry_at


def attempt_times(delays: tuple[float, ...]) -> list[float]:
    """When each attempt goes out if every one fails at once, the first at t = 0."""
    times, number = [0.0], 1
    while (following := retry_at(delays, number, times[-1])) is not None:
        times.append(following)
        number += 1
    return times


@pytest.mark.parametrize("settings", [Settings(), Settings.from_env({})], ids=["defaults", "empty-environment"])
def test_the_shipped_schedule_is_t_t1_t3_t7_then_dead(settings: Settings) -> None:
    # Contract section 6: at most 3 retries, 1 s, 2 s and 4 s after each failure; 4 attempts in all.
    assert attempt_times(settings.callback_retry_delays) == [0.0, 1.0, 3.0, 7.0]


def test_a_configured_schedule_is_followed() -> None:
    assert attempt_times((0.5,)) == [0.0, 0.5]
    assert attempt_times(()) == [0.0]
    assert Settings.from_env({"REELGATE_CALLBACK_RETRY_DELAYS": "2,3"}).callback_retry_delays == (2.0, 3.0)
