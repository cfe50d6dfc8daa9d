"""Metrics, liveness and logs in the documented PostgreSQL layout, with real processes driven by real submits.

Two ``serve --no-tasks`` API processes and one ``worker --metrics-port`` share a database of this session's own.
Their scrapes added up equal the work done; ``serve --workers 2`` answers the sum over its processes on every
scrape; killing the worker turns ``reelgate status`` and ``reelgate_backlog_stalled`` to stalled; the access lines
name the route and the account (never the key) and no JSON line carries a colour code; ``reelgate callbacks resend``
sends a dead callback again. The processes are started once for the whole module.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from dbs import truncate
from fakes import mediagen
from fakes.receiver import Receiver
from procs import Proc, create_key, free_ports, reelgate_env

FRONT = "data:image/jpeg;base64," + base64.b64encode(mediagen.jpeg(512, 640, scene=1)).decode()
SIDE = base64.b64encode(mediagen.jpeg(512, 640, scene=2)).decode()
DELIVERED_TASKS = 6  # called back at a receiver that answers 200
STARTUP_TIMEOUT = 40.0


def _body(callback: str) -> dict[str, object]:
    return {"model": "kling-custom-element", "callback_url": callback, "model_params": {
        "element_name": "metrics", "element_description": "counted", "reference_type": "image_refer",
        "element_image_list": {"frontal_image": FRONT, "refer_images": [{"image_url": SIDE}]}}}  # fmt: skip


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """One process's /metrics (a new connection each time): sample name -> labels -> value."""
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert page.status_code == 200, page.text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(page.text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def total(pages: list[dict[str, dict[tuple[tuple[str, str], ...], float]]], name: str, **labels: str) -> float:
    """The sum of a sample over every page, over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for page in pages for key, v in page.get(name, {}).items() if wanted <= set(key))


def wait_healthy(port: int, proc: Proc) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.popen.poll() is None, proc.log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"port {port} did not answer: {proc.log.read_text()[-3000:]}")


@dataclass
class Layout:
    env: dict[str, str]
    db_url: str
    key: str
    account_id: int
    api_ports: list[int]
    worker_port: int
    tmp: Path
    worker: Proc
    serve2: Proc  # serve --workers 2 --no-tasks, its processes sharing PROMETHEUS_MULTIPROC_DIR=tmp/prom
    serve2_port: int
    ok: Receiver
    refusing: Receiver
    task_ids: list[str] = field(default_factory=list)  # every task, the dead callback's last
    charged: float = 0.0

    def submit(self, port: int, callback: str) -> dict[str, object]:
        r = httpx.post(f"http://127.0.0.1:{port}/v1/videos/generations", json=_body(callback),
                       headers={"Authorization": f"Bearer {self.key}"}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        answer: dict[str, object] = r.json()
        return answer

    def cli(self, *args: str, **env: str) -> tuple[int, str, str]:
        import subprocess

        from procs import BIN

        done = subprocess.run([str(BIN), *args], env={**self.env, **env, "COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        return done.returncode, done.stdout, done.stderr


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _wait_deliveries_settled(url: str, timeout: float = 20) -> list[asyncpg.Record]:
    """Every delivery delivered or dead (its attempt recorded, so the dispatcher's counters are final)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = asyncio.run(_fetch(url, "SELECT task_id, status FROM deliveries"))
        if rows and all(r["status"] in ("delivered", "dead") for r in rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


@pytest.fixture(scope="module")
def layout(pg_session_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    tmp = tmp_path_factory.mktemp("layout")
    asyncio.run(truncate(pg_session_url))
    env = reelgate_env(tmp / "data", pg_session_url, REELGATE_LOG_LEVEL="INFO", REELGATE_LOG_JSON="1",
                       REELGATE_HEARTBEAT_SECONDS="0.2", REELGATE_LIVENESS_SECONDS="1",
                       REELGATE_CALLBACK_RETRY_DELAYS="0.1", REELGATE_RATE_LIMIT_PER_MINUTE="0",
                       REELGATE_UPLOADS_PER_ACCOUNT="8", REELGATE_MEDIA_PROCESSES="1")  # fmt: skip
    key = create_key(env, credits=100)
    [account_id] = [r["id"] for r in asyncio.run(_fetch(pg_session_url, "SELECT id FROM accounts"))]
    *api_ports, worker_port, serve2_port = free_ports(4)
    # All at once: starting processes is most of this module's time.
    procs = [Proc(env, "serve", "--no-tasks", "--port", str(port), log=tmp / f"api{i}.log")
             for i, port in enumerate(api_ports)]  # fmt: skip
    worker = Proc(env, "worker", "--metrics-port", str(worker_port), log=tmp / "worker.log")
    serve2 = Proc({**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")}, "serve", "--workers", "2", "--no-tasks",
                  "--port", str(serve2_port), log=tmp / "serve2.log")  # fmt: skip
    procs += [worker, serve2]
    with Receiver() as ok, Receiver(default=500) as refusing:
        try:
            for port, proc in zip([*api_ports, worker_port, serve2_port], procs, strict=True):
                wait_healthy(port, proc)
            lay = Layout(env, pg_session_url, key, account_id, api_ports, worker_port, tmp, worker, serve2,
                         serve2_port, ok, refusing)  # fmt: skip
            jobs = [(api_ports[i % 2], ok.url()) for i in range(DELIVERED_TASKS)] + [(api_ports[0], refusing.url())]
            with ThreadPoolExecutor(4) as pool:
                answers = list(pool.map(lambda job: lay.submit(*job), jobs))
            lay.task_ids = [str(a["id"]) for a in answers]
            ok.wait_for_tasks(lay.task_ids[:DELIVERED_TASKS], timeout=60)
            _wait_deliveries_settled(pg_session_url)
            for task_id in lay.task_ids:
                task = httpx.get(f"http://127.0.0.1:{api_ports[1]}/v1/tasks/{task_id}",
                                 headers={"Authorization": f"Bearer {key}"}, timeout=10).json()  # fmt: skip
                assert task["status"] == "completed", task
                lay.charged += float(task["usage"]["credits_charged"])
            yield lay
        finally:
            for proc in procs:
                proc.kill()


def test_metrics_summed_across_processes_equal_the_work_done(layout: Layout) -> None:
    apis = [scrape(port) for port in layout.api_ports]
    worker = scrape(layout.worker_port)
    every = [*apis, worker]
    submitted = len(layout.task_ids)
    # Each API process counted the submits it took, the worker none; together, every task.
    assert [total([page], "reelgate_tasks_submitted_total") for page in apis] == [4, 3]
    assert total([worker], "reelgate_tasks_submitted_total") == 0
    assert total(every, "reelgate_tasks_submitted_total", model="kling-custom-element") == submitted
    # The worker finished them all: finished tasks, provider calls, captures, callbacks add up to the work done.
    assert total(every, "reelgate_tasks_finished_total") == submitted
    assert total(every, "reelgate_tasks_finished_total", status="completed") == submitted
    assert total(apis, "reelgate_tasks_finished_total") == 0
    assert total(every, "reelgate_provider_call_seconds_count", provider="local") == submitted
    assert total(every, "reelgate_credits_total", kind="reserve") == pytest.approx(layout.charged)
    assert total(every, "reelgate_credits_total", kind="capture") == pytest.approx(layout.charged)
    assert total(every, "reelgate_credits_total", kind="release") == 0
    assert total(every, "reelgate_callback_attempts_total", outcome="delivered") == DELIVERED_TASKS
    assert total(every, "reelgate_callback_attempts_total", outcome="retry") == 1
    assert total(every, "reelgate_callback_attempts_total", outcome="dead") == 1
    assert total(every, "reelgate_lease_takeovers_total") == 0
    # Gauges from the database read the same wherever they are scraped.
    for page in every:
        assert total([page], "reelgate_workers_alive", kind="worker") == 1
        assert total([page], "reelgate_workers_alive", kind="dispatcher") == 1
        assert total([page], "reelgate_backlog_stalled") == 0
        assert total([page], "reelgate_queue_depth") == 0


def test_access_lines_name_route_and_account_and_json_lines_are_plain(layout: Layout) -> None:
    headers = {"Authorization": f"Bearer {layout.key}"}
    port = layout.api_ports[0]
    assert httpx.get(f"http://127.0.0.1:{port}/v1/tasks/{layout.task_ids[0]}", headers=headers).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/v1/nothing-here").status_code == 404
    deadline = time.monotonic() + 5
    while True:  # the line is written after the answer
        lines = [json.loads(line) for line in (layout.tmp / "api0.log").read_text().splitlines()]
        access = [entry for entry in lines if entry["logger"] == "reelgate.access"]
        if any(entry["route"] == "-" for entry in access) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    get = [e for e in access if e["route"] == "/v1/tasks/{task_id}" and e["path"].endswith(layout.task_ids[0])][-1]
    assert (get["method"], get["status"], get["account_id"]) == ("GET", 200, layout.account_id)
    assert 0 <= get["duration_ms"] < 5000 and get["msg"].startswith("GET /v1/tasks/{task_id} 200 ")
    submits = [e for e in access if e["route"] == "/v1/videos/generations"]
    assert len(submits) == 4 and {(e["method"], e["status"], e["account_id"]) for e in submits} == {
        ("POST", 200, layout.account_id)
    }
    [missing] = [e for e in access if e["route"] == "-"]
    assert (missing["status"], missing["path"], missing["account_id"]) == (404, "/v1/nothing-here", None)
    submitted = [e for e in lines if e["msg"] == "task submitted"]
    assert {(e["account_id"], e["model"], e["status"]) for e in submitted} == {
        (layout.account_id, "kling-custom-element", "pending")
    }
    finished = [json.loads(line) for line in (layout.tmp / "worker.log").read_text().splitlines()]
    done = [e for e in finished if e["msg"] == "task finished"]
    assert {e["task_id"] for e in done} == set(layout.task_ids)
    assert {(e["account_id"], e["model"], e["status"]) for e in done} == {
        (layout.account_id, "kling-custom-element", "completed")
    }
    for log in ("api0.log", "api1.log", "worker.log"):
        text = (layout.tmp / log).read_text()
        assert "\x1b" not in text and "\\u001b" not in text and "color_message" not in text, log
        assert layout.key not in text and layout.key[:12] not in text, log
        assert "Started server process" in text or log == "worker.log"  # uvicorn's own line, in plain JSON


def test_callbacks_resend_sends_a_dead_callback_again(layout: Layout) -> None:
    dead = layout.task_ids[-1]
    assert len(layout.refusing.received) == 2  # the first attempt and its one retry, both refused
    layout.refusing.default = 200
    code, out, err = layout.cli("callbacks", "resend", dead)
    assert code == 0, err
    assert out.startswith(f"resent the callback of {dead} to {layout.refusing.url()} (webhook-id ")
    got = layout.refusing.wait_for(3, timeout=10)
    assert json.loads(got[-1].body)["id"] == dead
    assert got[-1].headers["webhook-id"] == got[0].headers["webhook-id"]
    rows = _wait_deliveries_settled(layout.db_url)
    assert {r["task_id"]: r["status"] for r in rows}[dead] == "delivered"
    again = layout.cli("callbacks", "resend", dead)
    assert again[0] == 1 and "already delivered" in again[2]


def _per_process_submits(directory: Path) -> dict[str, float]:
    """What each process of a multiprocess directory counted, read from its own file."""
    counted: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        counted[path.stem] = sum(v for key, v, _, _ in values if json.loads(key)[1] == "reelgate_tasks_submitted_total")
    return counted


def test_serve_workers_2_answers_the_sum_on_every_scrape(layout: Layout) -> None:
    port, shared = layout.serve2_port, layout.tmp / "prom"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while len(list(shared.glob("counter_*.db"))) < 2:  # both processes up (each makes its files on start)
        assert time.monotonic() < deadline, list(shared.iterdir())
        time.sleep(0.1)
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: layout.submit(port, layout.ok.url()), range(8)))
    layout.task_ids.extend(str(a["id"]) for a in ids)
    counted = _per_process_submits(shared)
    assert len(counted) == 2 and sum(counted.values()) == 8, counted
    for _ in range(8):  # each on a new connection, so to either process
        assert total([scrape(port)], "reelgate_tasks_submitted_total") == 8
    text = (layout.tmp / "serve2.log").read_text()
    assert "\x1b" not in text and "\\u001b" not in text and "color_message" not in text


def test_a_killed_worker_reads_stalled(layout: Layout) -> None:
    layout.worker.kill()
    time.sleep(1.2)  # past REELGATE_LIVENESS_SECONDS
    waiting = layout.submit(layout.api_ports[0], layout.ok.url())  # nothing will run it
    time.sleep(0.6)
    code, out, err = layout.cli("--json", "status", REELGATE_STALL_SECONDS="0.5")
    health = json.loads(out)
    assert code == 3 and health["stalled"] and health["workers_alive"] == 0 and health["queue_depth"] == 1, err
    assert health["reasons"][0].startswith("no worker has heartbeated for")
    assert health["reasons"][1].startswith("the oldest waiting task has waited")
    [silent] = [p for p in health["processes"] if p["kind"] == "worker"]
    assert not silent["alive"] and silent["silent_seconds"] >= 1
    deadline = time.monotonic() + 10  # an API process reads the database at most every 5 s
    while total([scrape(layout.api_ports[1])], "reelgate_backlog_stalled") != 1:
        assert time.monotonic() < deadline
        time.sleep(0.25)
    page = scrape(layout.api_ports[1])
    assert total([page], "reelgate_workers_alive", kind="worker") == 0 and total([page], "reelgate_queue_depth") == 1
    # A cancel is logged with its account, model, code and reason.
    cancel = httpx.post(f"http://127.0.0.1:{layout.api_ports[0]}/v1/tasks/{waiting['id']}/cancel",
                        headers={"Authorization": f"Bearer {layout.key}"}, timeout=10)  # fmt: skip
    assert cancel.status_code == 200, cancel.text
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in (layout.tmp / "api0.log").read_text().splitlines()]
        cancelled = [e for e in lines if e["msg"] == "task cancelled"]
        if cancelled or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [line] = cancelled
    assert (line["task_id"], line["account_id"], line["model"], line["status"], line["code"]) == (
        waiting["id"], layout.account_id, "kling-custom-element", "failed", "request_cancelled")  # fmt: skip
    assert line["reason"] == "The task was cancelled by the client."
