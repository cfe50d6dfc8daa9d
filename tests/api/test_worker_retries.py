"""Worker retries: provider errors are counted apart from claims, retried with back-off, then fail with a refund."""

from __future__ import annotations

from typing import Any

from harness import Api, b64_jpeg, image_body
from reelgate.providers import Completed, Job, JobContext, NewElement, Outcome, Pending
from reelgate.worker import MAX_ATTEMPTS


class Flaky:
    """Polls ``polls`` times (Pending), then raises ``failures`` times, then completes."""

    name = "local"

    def __init__(self, polls: int, failures: int) -> None:
        self.polls, self.failures, self.runs = polls, failures, 0

    async def run(self, job: Job, ctx: JobContext) -> Outcome:
        self.runs += 1
        if self.runs <= self.polls:
            return Pending(0.0, {**job.state, "polls": self.runs})
        if self.runs <= self.polls + self.failures:
            raise RuntimeError("upstream hiccup")
        return Completed({"element_id": "42"}, NewElement("42"))

    async def delete_element(self, upstream_id: str, state: dict[str, Any]) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_many_polls_then_a_few_errors_still_complete(api: Api, monkeypatch: Any) -> None:
    monkeypatch.setattr("reelgate.worker.MAX_ATTEMPTS", 3)
    flaky = Flaky(polls=12, failures=2)
    assert api.rt.worker is not None
    api.rt.worker.providers["local"] = flaky
    monkeypatch.setattr("reelgate.worker.Worker._retry_or_fail", _instant_retry(api.rt.worker._retry_or_fail))
    key = await api.key()
    task = await api.wait(key, (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"], 30)
    assert task["status"] == "completed" and flaky.runs == 15


async def test_errors_beyond_the_budget_fail_with_a_refund(api: Api, monkeypatch: Any) -> None:
    flaky = Flaky(polls=0, failures=100)
    assert api.rt.worker is not None
    api.rt.worker.providers["local"] = flaky
    monkeypatch.setattr("reelgate.worker.Worker._retry_or_fail", _instant_retry(api.rt.worker._retry_or_fail))
    key = await api.key(credits=1)
    task = await api.wait(key, (await api.submit(key, image_body(b64_jpeg(1), b64_jpeg(2)))).json()["id"], 30)
    assert task["status"] == "failed" and task["error"]["code"] == "unknown_error" and flaky.runs == MAX_ATTEMPTS
    assert task["usage"]["credits_charged"] == 0


def _instant_retry(original: Any) -> Any:
    """The real rule with the back-off removed, so the test does not wait 2^n seconds."""

    def retry(claim: Any, code: str, message: str) -> Outcome:
        outcome = original(claim, code, message)
        return Pending(0.0, outcome.state) if isinstance(outcome, Pending) else outcome

    return lambda self, claim, code, message: retry(claim, code, message)
