"""Pure parts of the client: the polling schedule, Retry-After parsing, media encoding, result parsing, and the
README's list of resources and methods against the clients themselves."""

from __future__ import annotations

import base64
import email.utils
import inspect
import re
import time
from pathlib import Path

import httpx
import pytest

from client.live import jpeg, png
from reelgate_client import AsyncReelgate, MediaInputError, Reelgate, Task, TaskFailedError, WaitTimeoutError
from reelgate_client._errors import retry_after
from reelgate_client._media import encode_media, sniff_mime
from reelgate_client._poll import Poller


def _task(status: str = "processing", progress: int = 10, eta: int = 600, **extra: object) -> Task:
    return Task.from_dict(
        {
            "id": "task-unified-1-abcdefgh",
            "status": status,
            "progress": progress,
            "created": 1,
            "model": "kling-custom-element",
            "task_info": {"can_cancel": True, "estimated_time": eta},
            **extra,
        }
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_polling_backs_off_from_a_quarter_second_to_five_seconds() -> None:
    clock = FakeClock()
    poller = Poller(timeout=None, clock=clock)
    delays = [poller.step(_task()) for _ in range(12)]
    assert delays[:4] == [0.25, 0.375, 0.5625, 0.84375] and delays[-1] == 5.0
    assert all(a is not None and b is not None and a <= b for a, b in zip(delays, delays[1:], strict=False))


def test_a_short_estimate_keeps_polling_brisk_and_the_limit_is_kept() -> None:
    clock = FakeClock()
    poller = Poller(timeout=3.0, clock=clock)
    delays = []
    with pytest.raises(WaitTimeoutError) as timed_out:
        while True:
            delay = poller.step(_task(eta=8))
            assert delay is not None
            delays.append(delay)
            clock.now += delay
    assert max(delays) <= 0.8 and clock.now == pytest.approx(3.0)  # a tenth of the 8 s estimate; never past 3 s
    assert timed_out.value.timeout == 3.0 and "still processing" in str(timed_out.value)


def test_progress_is_reported_on_change_and_the_end_returns_or_raises() -> None:
    seen: list[tuple[str, int]] = []
    poller = Poller(on_progress=lambda t: seen.append((t.status, t.progress)))
    for task in (_task("pending", 0), _task("pending", 0), _task("processing", 40)):
        assert poller.step(task) is not None
    assert poller.step(_task("completed", 100)) is None
    assert seen == [("pending", 0), ("processing", 40), ("completed", 100)]
    failed = _task("failed", 40, error={"code": "request_cancelled", "message": "cancelled by the client"})
    with pytest.raises(TaskFailedError, match=r"cancelled by the client \(request_cancelled\)"):
        Poller().step(failed)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after(httpx.Headers({})) is None and retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(httpx.Headers({"Retry-After": later})) or 0) <= 30


def test_media_is_typed_by_content_not_by_name() -> None:
    assert sniff_mime(jpeg(1), "image") == "image/jpeg" and sniff_mime(png(1), "image") == "image/png"
    assert sniff_mime(b"\x00\x00\x00\x18ftypisom" + bytes(8), "video") == "video/mp4"
    assert sniff_mime(b"\x00\x00\x00\x14ftypqt  " + bytes(8), "video") == "video/quicktime"
    assert sniff_mime(b"plain text", "image") == "image/octet-stream"
    data = png(2)
    assert encode_media(data, "image", "f") == "data:image/png;base64," + base64.b64encode(data).decode()
    assert encode_media(" https://example.com/a.jpg ", "image", "f") == "https://example.com/a.jpg"
    bare = base64.b64encode(data).decode()
    assert encode_media(bare, "image", "f") == bare
    with pytest.raises(MediaInputError, match="refer\\[0\\]: no such file"):
        encode_media("missing.jpg", "image", "refer[0]")


def test_results_parse_element_ids_as_strings() -> None:
    task = _task(
        "completed",
        100,
        result_data={"element_id": 18446744073709551615, "element_name": "Big", "tag_list": [{"tag_id": "o_101"}]},
    )
    assert task.result is not None and task.result.element_id == "18446744073709551615"
    assert task.result.tags == ("o_101",) and task.done and task.raw["result_data"]["element_name"] == "Big"


CLIENT_README = Path(__file__).resolve().parents[2] / "clients" / "python" / "README.md"


def _documented() -> dict[str, set[str]]:
    """The README's "Resources and methods" table: resource name -> method names."""
    section = CLIENT_README.read_text().split("## Resources and methods", 1)[1]
    methods: dict[str, set[str]] = {}
    resource = ""
    for row in re.findall(r"^\| (`client\.\w+`)? *\| `(\w+)\(", section, re.MULTILINE):
        resource = row[0].strip("`").removeprefix("client.") or resource
        methods.setdefault(resource, set()).add(row[1])
    return methods


def _public_methods(client: object) -> dict[str, set[str]]:
    resources = {name: value for name, value in vars(client).items()
                 if not name.startswith("_") and type(value).__module__.startswith("reelgate_client.")}  # fmt: skip
    return {name: {m for m, _ in inspect.getmembers(type(value), inspect.isfunction) if not m.startswith("_")}
            for name, value in resources.items()}  # fmt: skip


def test_the_readme_lists_every_resource_and_method_of_both_clients() -> None:
    documented = _documented()
    assert "tasks" in documented and "retrieve" in documented["tasks"]
    for client in (Reelgate(api_key="rg_test"), AsyncReelgate(api_key="rg_test")):
        assert _public_methods(client) == documented, type(client).__name__
