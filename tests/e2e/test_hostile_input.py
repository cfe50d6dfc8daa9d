"""Hostile input against a real ``reelgate serve`` on SQLite and on PostgreSQL: query strings of every shape on
the list routes and free text in names, each answered 2xx or the contract's 400 body, never 5xx."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbs import PG_BASE, pg_admin, pg_unreachable
from harness import b64_jpeg, image_body
from procs import create_key, free_port, reelgate_env, serve

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one family emoji: 7 code points
LIST_ROUTES = ("/v1/tasks", "/v1/elements")


@dataclass
class Live:
    client: httpx.Client
    element_id: str
    task_id: str


def _database(engine: str, tmp: Path) -> tuple[str, str | None]:
    if engine == "sqlite":
        return f"sqlite:///{tmp / 'hostile.db'}", None
    reason = pg_unreachable()
    if reason is not None:
        if os.environ.get("REELGATE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason}; REELGATE_REQUIRE_POSTGRES=1 forbids skipping the PostgreSQL tests")
        pytest.skip(reason)
    name = f"reelgate_hostile_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(pg_admin(f"CREATE DATABASE {name}"))
    return PG_BASE.rsplit("/", 1)[0] + f"/{name}", name


def _completed_task(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    task = client.post("/v1/videos/generations", json=body)
    assert task.status_code == 200, task.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found: dict[str, Any] = client.get(f"/v1/tasks/{task.json()['id']}").json()
        if found["status"] in ("completed", "failed"):
            return found
        time.sleep(0.05)
    raise AssertionError("the seed task did not finish")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One real server per engine, with one completed task and its element to page past."""
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    url, pg_name = _database(request.param, tmp)
    env = reelgate_env(tmp / "data", url, REELGATE_RATE_LIMIT_PER_MINUTE="0")
    port = free_port()
    proc = serve(env, port, tmp / "serve.log")
    try:
        key = create_key(env, credits=100)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as client:
            task = _completed_task(client, image_body(b64_jpeg(1), b64_jpeg(2)))
            assert task["status"] == "completed", task
            yield Live(client, task["result_data"]["element_id"], task["id"])
    finally:
        proc.stop()
        log = (tmp / "serve.log").read_text()
        if pg_name is not None:
            asyncio.run(pg_admin(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"))
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]


def _assert_contract_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.request.url, response.text)
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] and error["message"]
    if param is not None:
        assert error["param"] == param and param in error["message"], error
    return error


# Every one of these answered 500 before the query helpers were strict (NUL ones on PostgreSQL only); the others
# were taken as something they are not (a fullwidth digit as 1, an id of 5,000 characters as a cursor).
REFUSED = [
    ("/v1/tasks?limit=%C2%B2", "limit"),  # '²'.isdigit() is True, int('²') raises
    ("/v1/elements?limit=%C2%B2", "limit"),
    ("/v1/tasks?after=%00", "after"),  # NUL into a PostgreSQL text column
    ("/v1/tasks?model=%00", "model"),
    ("/v1/elements?after=%00", "after"),
    ("/v1/tasks?limit=%EF%BC%91", "limit"),  # fullwidth 1
    ("/v1/tasks?limit=%D9%A3", "limit"),  # Arabic-Indic 3
    ("/v1/tasks?limit=0", "limit"),
    ("/v1/tasks?limit=101", "limit"),
    ("/v1/tasks?limit=", "limit"),
    ("/v1/tasks?limit=1&limit=2", "limit"),
    ("/v1/elements?limit=99999999999999999999999999", "limit"),
    ("/v1/tasks?limit=" + "9" * 5000, "limit"),  # int() of more than 4,300 digits raises ValueError: was a 500
    ("/v1/tasks?after=" + "a" * 5000, "after"),
    ("/v1/tasks?after=task-unified-1-abc", "after"),
    ("/v1/tasks?after=task-unified-%D9%A1%D9%A7-abcdefgh", "after"),  # Arabic-Indic digits matched \d
    ("/v1/tasks?after=%FF%FE", "after"),  # not UTF-8
    ("/v1/tasks?after=", "after"),
    ("/v1/elements?after=12x", "after"),
    ("/v1/elements?after=%C2%B2", "after"),
    ("/v1/elements?after=-1", "after"),
    ("/v1/tasks?model=kling%00custom", "model"),
    ("/v1/tasks?model=no-such-model", "model"),
    ("/v1/tasks?model=" + "m" * 300, "model"),
    ("/v1/tasks?status=%00", "status"),
    ("/v1/tasks?status=completed&status=failed", "status"),
]


@pytest.mark.parametrize(("path", "param"), REFUSED)
def test_hostile_query_values_answer_the_contracts_400(live: Live, path: str, param: str) -> None:
    _assert_contract_error(live.client.get(path), 400, param)


@pytest.mark.parametrize("element_id", ["%C2%B2", "%D9%A3", "%EF%BC%91", "%00", "9" * 5000])
def test_hostile_element_ids_answer_404(live: Live, element_id: str) -> None:
    # A non-ASCII digit passes str.isdigit(); it must still be an unknown id, never a store error.
    for method in ("GET", "DELETE"):
        response = live.client.request(method, f"/v1/elements/{element_id}")
        assert response.status_code == 404, (method, element_id[:20], response.text)
        assert response.json()["error"]["type"] == "not_found_error"


def test_well_formed_queries_still_page_and_filter(live: Live) -> None:
    tasks = live.client.get("/v1/tasks", params={"limit": 1, "model": "kling-custom-element", "status": "completed"})
    assert tasks.status_code == 200 and [t["id"] for t in tasks.json()["data"]] == [live.task_id]
    assert live.client.get("/v1/tasks", params={"after": live.task_id}).json()["data"] == []
    unknown = "task-unified-1700000000-00000000"  # well formed, never issued: an empty page, as before
    assert live.client.get("/v1/tasks", params={"after": unknown, "limit": "100"}).status_code == 200
    elements = live.client.get("/v1/elements", params={"limit": "001"}).json()
    after = live.client.get("/v1/elements", params={"after": elements["last_id"]}).json()
    assert live.element_id in [e["id"] for e in elements["data"] + after["data"]]
    # Parameters nobody documented are ignored, as unknown body fields are (the compatibility rule).
    assert live.client.get("/v1/tasks?surprise=%00&limit=5").status_code == 200


_NAMES = st.sampled_from(["limit", "after", "status", "model", "LIMIT", "limit[]", "", "%00"]) | st.text(max_size=6)
_VALUES = st.one_of(
    st.binary(max_size=48),
    st.text(max_size=48).map(lambda s: s.encode("utf-8")),
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: str(n).encode()),
    st.sampled_from(
        [
            b"task-unified-1700000000-00000000",
            b"task-unified-1700000000-0000000",
            b"completed",
            b"kling-custom-element",
            b"\x00",
            b"1",
        ]
    ),
)


def _raw_query(pairs: list[tuple[str, bytes]], sep: str) -> str:
    return sep.join(f"{quote(name, safe='%')}={quote_from_bytes(value, safe='')}" for name, value in pairs)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(LIST_ROUTES), pairs=st.lists(st.tuples(_NAMES, _VALUES), max_size=4),
       sep=st.sampled_from(["&", ";", "&&"]))  # fmt: skip
def test_arbitrary_query_strings_never_answer_5xx(live: Live, route: str, pairs: list[tuple[str, bytes]],
                                                  sep: str) -> None:  # fmt: skip
    response = live.client.get(f"{route}?{_raw_query(pairs, sep)}")
    assert response.status_code in (200, 400), (response.request.url, response.status_code, response.text)
    if response.status_code == 400:
        error = _assert_contract_error(response, 400)
        assert error["param"] in ("limit", "after", "status", "model"), error


# --- free text: what a person sees is what is counted, and what a person cannot see is refused -----------------


def _name_body(name: str, **extra: Any) -> dict[str, Any]:
    # Loopback URLs on a closed port: a refused body is never fetched, an accepted one fails fast and is refunded.
    return image_body("http://127.0.0.1:9/front.jpg", "http://127.0.0.1:9/side.jpg", element_name=name, **extra)


HIDDEN_NAMES = [
    "\x00",  # NUL only
    "\u200b",  # a lone zero-width space
    "evil\u202egpj.exe",  # right-to-left override
    "a\u2066b\u2069",  # isolates
    "line\nbreak",
    "tab\there",
    "\u3164\u3164",  # Hangul fillers: look like nothing
    "\ufe0f\u200d",  # a variation selector and a joiner alone
    "x\U000e0041\U000e0042",  # tag characters smuggling hidden ASCII
    "bell\x07",
    "del\x7f",
    "c1\x85next",  # NEL inside (at either end it is trimmed, as whitespace)
]


@pytest.mark.parametrize("name", HIDDEN_NAMES)
def test_names_with_hidden_characters_are_refused(live: Live, name: str) -> None:
    error = _assert_contract_error(live.client.post("/v1/videos/generations", json=_name_body(name)), 400,
                                   "model_params.element_name")  # fmt: skip
    assert error["code"] == "invalid_parameter"


def test_names_count_what_a_person_sees(live: Live) -> None:
    family = _completed_task(live.client, image_body(b64_jpeg(3), b64_jpeg(4), element_name=f" {FAMILY * 3} "))
    assert family["result_data"]["element_name"] == FAMILY * 3  # 21 code points, 3 characters, trimmed
    element = live.client.get(f"/v1/elements/{family['result_data']['element_id']}").json()
    assert element["element_name"] == FAMILY * 3
    flags = "\U0001f1ef\U0001f1f5" * 20  # 20 flags, 40 code points
    assert live.client.post("/v1/videos/generations", json=_name_body(flags)).status_code == 200
    too_long = _assert_contract_error(live.client.post("/v1/videos/generations", json=_name_body("e\u0301" * 21)),
                                      400, "model_params.element_name")  # fmt: skip
    assert "1-20 characters" in too_long["message"]
    description = "\u0915\u094d\u0937" * 100  # 100 Devanagari conjuncts, 300 code points
    ok = live.client.post("/v1/videos/generations", json=_name_body("Kṣa", element_description=description))
    assert ok.status_code == 200, ok.text
    refused = live.client.post("/v1/videos/generations", json=_name_body("ok", element_description="a\u202eb"))
    _assert_contract_error(refused, 400, "model_params.element_description")
