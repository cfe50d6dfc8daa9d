"""What every benchmark shares: servers started as real processes, databases, load generation and result files.

Everything here talks to 127.0.0.1 only. Servers are started in their own process group and stopped by that
group's id, so a benchmark never touches processes it did not start.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# bench/ceiling_app.py's bare endpoint, at a path Reelgate's application takes the short way to, as its task query
CEILING_PATH = "/v1/tasks/hello"
PG_ADMIN_URL = os.environ.get("REELGATE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SEED_BODY: dict[str, Any] = {
    "model": "kling-custom-element",
    "model_params": {
        "element_name": "My Character",
        "element_description": "A young male character with short hair, wearing a white T-shirt",
        "reference_type": "image_refer",
        "element_image_list": {
            "frontal_image": "https://example.com/front.jpg",
            "refer_images": [{"image_url": "https://example.com/side.jpg"}],
        },
    },
}


def add_tests_to_path() -> None:
    """Make ``fakes`` (tests/fakes: media generation, loopback servers) importable."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


def reelgate_cmd() -> list[str]:
    script = Path(sys.executable).parent / "reelgate"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from reelgate.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + (" (src modified)" if dirty.stdout.strip() else "")


def cpu_calibration_ms() -> float:
    """Milliseconds one core takes for a fixed pure-Python loop (best of 3): tells runs on a slower day apart.

    The same 2-core machine has measured both 22,500 and 8,600 ceiling requests/s on one day; ratios mostly hold
    across such days, but not all of them, so every run records this alongside its figures.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_calibration_ms": cpu_calibration_ms(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": git_commit(),
        "load_tool": "wrk" if ensure_wrk() else "bench/loadgen.py",
    }


# --- databases ---------------------------------------------------------------------------------------------------


@dataclass
class Db:
    """A fresh database for one server: SQLite in the data dir, or a new PostgreSQL database dropped afterwards."""

    kind: str  # "sqlite" | "postgres"
    url: str = ""  # empty for SQLite: the server's default file in REELGATE_DATA_DIR
    pg_name: str = ""

    def pids(self) -> list[int]:
        """PostgreSQL backends serving this database: their CPU is ours, not a neighbour's."""
        if self.kind != "postgres":
            return []
        import asyncio

        import asyncpg

        async def query() -> list[int]:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.pg_name)
            finally:
                await conn.close()
            return [int(r["pid"]) for r in rows]

        return asyncio.run(query())


def _pg(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def database(kind: str) -> Iterator[Db]:
    if kind == "sqlite":
        yield Db("sqlite")
        return
    if kind != "postgres":
        raise ValueError(f"unknown database kind {kind!r} (sqlite or postgres)")
    name = f"reelgate_bench_{uuid.uuid4().hex[:10]}"
    _pg(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield Db("postgres", f"{base}/{name}", name)
    finally:
        _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- servers -----------------------------------------------------------------------------------------------------


def server_env(data_dir: Path, db: Db, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REELGATE_DATA_DIR=str(data_dir),
        REELGATE_ALLOW_PRIVATE_NETWORKS="1",
        REELGATE_LOG_LEVEL="WARNING",
        REELGATE_RATE_LIMIT_PER_MINUTE="0",
        REELGATE_MAX_IN_FLIGHT="100000000",
    )
    env.pop("REELGATE_DATABASE_URL", None)
    if db.url:
        env["REELGATE_DATABASE_URL"] = db.url
    env.update(extra)
    return env


def create_key(env: dict[str, str], account: str = "bench", credits: str = "1000000") -> str:
    out = subprocess.run([*reelgate_cmd(), "keys", "create", "--account", account, "--credits", credits], env=env,
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


class Process:
    """A child process in its own session (process group); stopped by that group's id."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(list(argv), env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def wait_http(self, url: str, timeout: float = 60.0, settle: float = 0.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"server exited early (code {self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    time.sleep(settle)  # with several processes, let the others finish starting too
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server at {url} not ready in {timeout:g} s:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        return self.tree_pids() if self.alive() else []

    def tree_pids(self) -> list[int]:
        """This process and its descendants (uvicorn's worker processes)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MB: ``VmRSS`` (all of it) or one part, e.g. ``RssAnon`` (heap and stacks:
    what the process itself holds) or ``RssFile`` (mapped files, such as SQLite's memory-mapped database, which the
    kernel can drop and shares with the page cache)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Reelgate:
    """A ``reelgate serve`` process on a fresh data dir, with one API key."""

    proc: Process
    port: int
    key: str
    env: dict[str, str]
    data_dir: Path
    db: Db

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "reelgate.db"


class ServerGone(RuntimeError):
    """A server we started is no longer running; on a shared machine, possibly a signal from someone else."""

    def __init__(self, proc: Process) -> None:
        code = proc.proc.returncode
        why = {-15: "SIGTERM", -9: "SIGKILL", 0: "a clean exit (uvicorn's supervisor exits 0 on SIGTERM)"}.get(code)
        super().__init__(f"server pid {proc.pid} exited with {code}" + (f" ({why}; we did not send it)" if why else "")
                         + f"; its log ends with:\n{proc.log_tail(10)}")  # fmt: skip


class PortTaken(RuntimeError):
    """Another process answered on the port we picked (the machine is shared): try another port."""


def _start(argv: list[str], env: dict[str, str], log: Path, probe: str, check: Any, workers: int) -> Process:
    """Start a server whose argv ends in the port; retry on a new port if the one we picked was taken."""
    for _ in range(3):
        port = free_port()
        proc = Process([a.replace("{port}", str(port)) for a in argv], env, log)
        try:
            proc.wait_http(probe.replace("{port}", str(port)), settle=1.5 if workers > 1 else 0.2)
            if not proc.alive() or not check(port):
                raise PortTaken(f"port {port} is answered by a process we did not start")
            proc.port = port
            return proc
        except (PortTaken, RuntimeError) as exc:
            proc.stop()
            last: Exception = exc
    raise RuntimeError(f"could not start {argv[:3]}: {last}")


@contextlib.contextmanager
def reelgate(db: Db, *, workers: int = 1, no_tasks: bool = False, **extra_env: str) -> Iterator[Reelgate]:
    with tempfile.TemporaryDirectory(prefix="reelgate-bench-") as tmp:
        data_dir = Path(tmp)
        env = server_env(data_dir, db, **extra_env)
        key = create_key(env)
        argv = [*reelgate_cmd(), "serve", "--workers", str(workers), "--port", "{port}"]
        if no_tasks:
            argv.append("--no-tasks")

        def ours(port: int) -> bool:  # only our server knows our key
            auth = {"Authorization": f"Bearer {key}"}
            return httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=auth, timeout=5).status_code == 200

        proc = _start(argv, env, data_dir / "server.log", "http://127.0.0.1:{port}/healthz", ours, workers)
        try:
            yield Reelgate(proc, proc.port, key, env, data_dir, db)
        except BaseException:
            state = "running" if proc.alive() else f"exited with {proc.proc.returncode}"
            print(f"reelgate serve on port {proc.port} ({state}); its log ends with:\n{proc.log_tail()}",
                  file=sys.stderr)  # fmt: skip
            raise
        finally:
            proc.stop()
            keep_problem_log(data_dir / "server.log")


_PROBLEM = re.compile(r'"level": ?"(warning|error|critical)"')


def is_problem_line(line: str) -> bool:
    """A warning or error in a JSON server log, other than the development switch's own warning."""
    return _PROBLEM.search(line) is not None and "PRIVATE_NETWORKS" not in line


def keep_problem_log(log: Path) -> Path | None:
    """Copy a server log that has warnings or errors to bench/results/server-logs/ (the temp dir goes away), so a
    non-2xx answer or an error during a run can be traced; the dev-switch warning every bench server logs aside."""
    if not log.exists():
        return None
    problems = [line for line in log.read_text(errors="replace").splitlines() if is_problem_line(line)]
    if not problems:
        return None
    kept = RESULTS / "server-logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(log, kept)
    print(f"server log with {len(problems)} warnings/errors kept in {kept}; first: {problems[0][:300]}",
          file=sys.stderr)  # fmt: skip
    return kept


@contextlib.contextmanager
def ceiling_server(workers: int) -> Iterator[tuple[str, Process]]:
    """The bare JSON endpoint (bench/ceiling_app.py) under the same uvicorn configuration as ``reelgate serve``."""
    with tempfile.TemporaryDirectory(prefix="reelgate-ceiling-") as tmp:
        argv = [sys.executable, str(BENCH / "ceiling_app.py"), "--workers", str(workers), "--port", "{port}"]

        def ours(port: int) -> bool:
            answer: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}{CEILING_PATH}", timeout=5).json()
            return answer.get("object") == "hello"

        proc = _start(argv, dict(os.environ), Path(tmp) / "ceiling.log", "http://127.0.0.1:{port}" + CEILING_PATH, ours,
                      workers)  # fmt: skip
        try:
            yield f"http://127.0.0.1:{proc.port}{CEILING_PATH}", proc
        finally:
            proc.stop()


# --- CPU accounting: how much of the machine did something else use while we measured? ------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat.

    Interrupt and softirq time are left out: under loopback load they are mostly our own packets, and they are
    not charged to any process, so counting them would make our own traffic look like a neighbour's.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + steal) / _TICK


def pids_cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """CPU seconds (user + system) each live process of ``pids`` has used."""
    seconds = {}
    for pid in pids:
        try:
            parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        seconds[pid] = (int(parts[11]) + int(parts[12])) / _TICK  # utime, stime
    return seconds


def pin(pids: Sequence[int], cpus: Sequence[int]) -> None:
    """Let every thread of ``pids`` run only on ``cpus`` (threads they start later inherit it)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


class HasPids(Protocol):
    def pids(self) -> list[int]: ...


class CpuWatch:
    """Machine-wide busy time minus ours (this process, our reaped children, the watched processes).

    ``watched``: our servers (Process) and databases (Db: the PostgreSQL backends serving them).
    """

    def __init__(self, watched: Sequence[HasPids] = ()) -> None:
        self.watched = list(watched)
        self._start = self._sample()

    def _watched_cpu(self) -> dict[int, float]:
        return {pid: cpu for w in self.watched for pid, cpu in pids_cpu_seconds(w.pids()).items()}

    def _sample(self) -> tuple[float, float, float, dict[int, float]]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = children.ru_utime + children.ru_stime + time.process_time()
        return time.monotonic(), cpu_busy_seconds(), own, self._watched_cpu()

    def other_share(self) -> float:
        """Share of all cores used by processes we did not start, since this watch began (0..1).

        Watched processes are counted by their own change: one that starts meanwhile (a renewed database
        connection) counts from zero, and one that ends is not counted as having given its CPU back.
        """
        t0, busy0, own0, watched0 = self._start
        t1, busy1, own1, watched1 = self._sample()
        ours = (own1 - own0) + sum(cpu - watched0.get(pid, 0.0) for pid, cpu in watched1.items())
        capacity = (t1 - t0) * (os.cpu_count() or 1)
        return max(0.0, min(1.0, ((busy1 - busy0) - ours) / capacity)) if capacity > 0 else 0.0


def wait_for_quiet(max_wait: float, threshold: float = 0.10, window: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than ``threshold`` of the machine.

    Returns the last measured share. The machine may be shared (test suites, other servers); a benchmark run
    while it is busy measures the neighbours as much as the code.
    """
    deadline = time.monotonic() + max_wait
    while True:
        watch = CpuWatch()
        time.sleep(window)
        share = watch.other_share()
        if share < threshold or time.monotonic() >= deadline:
            return share


# --- load generation ---------------------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    tool: str
    other_cpu: float = 0.0  # share of the machine used by processes we did not start, during the run
    detail: dict[str, Any] = field(default_factory=dict)


@functools.cache
def ensure_wrk() -> str | None:
    """wrk from the Debian package, installed on first use when we may; None means use bench/loadgen.py."""
    if os.environ.get("REELGATE_BENCH_NO_WRK") == "1":
        return None
    found = shutil.which("wrk")
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing the Debian package (apt-get install wrk) ...", flush=True)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        found = shutil.which("wrk")
    if not found:
        print("wrk unavailable: using bench/loadgen.py (a Python load generator with a lower ceiling)", flush=True)
    return found


_LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d," ..
    "\"non2xx\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"timeout\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def _lua(method: str, body: bytes | None, headers: dict[str, str], paths_file: Path | None) -> str:
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f"wrk.body = [==[{body.decode()}]==]")
    if paths_file is not None:
        lines += [
            "local paths = {}",
            f'for line in io.lines("{paths_file}") do paths[#paths + 1] = line end',
            "local counter = 0",
            "setup = function(thread) counter = counter + 1; thread:set('tid', counter) end",
            "init = function(args) math.randomseed(os.time() * 31 + tid) end",
            "request = function() return wrk.format(nil, paths[math.random(#paths)]) end",
        ]
    return "\n".join(lines) + _LUA_DONE


def load(
    url: str,
    *,
    duration: float,
    connections: int = 64,
    threads: int = 2,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    paths: list[str] | None = None,
    watch: Sequence[HasPids] = (),
    cpus: Sequence[int] = (),
) -> Load:
    """Drive ``url`` for ``duration`` seconds with wrk (or bench/loadgen.py) and return its figures.

    ``watch``: our servers and databases, so that CPU they use is not counted as a neighbour's. ``cpus``: the cores
    the load generator may run on (all when empty).
    """
    headers = headers or {}
    seconds = max(1, round(duration))
    for server in watch:
        if isinstance(server, Process) and not server.alive():
            raise ServerGone(server)
    with tempfile.TemporaryDirectory(prefix="reelgate-load-") as tmp:
        paths_file = None
        if paths:
            paths_file = Path(tmp) / "paths.txt"
            paths_file.write_text("\n".join(paths) + "\n")
        wrk = ensure_wrk()
        if wrk:
            script = Path(tmp) / "script.lua"
            script.write_text(_lua(method, body, headers, paths_file))
            argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
                    url]  # fmt: skip
            tool = "wrk"
        else:
            argv = [sys.executable, str(BENCH / "loadgen.py"), "--url", url, "--duration", str(seconds),
                    "--connections", str(connections), "--method", method]  # fmt: skip
            for name, value in headers.items():
                argv += ["--header", f"{name}: {value}"]
            if body is not None:
                (Path(tmp) / "body.json").write_bytes(body)
                argv += ["--body-file", str(Path(tmp) / "body.json")]
            if paths_file is not None:
                argv += ["--paths-file", str(paths_file)]
            tool = "loadgen"
        if cpus and shutil.which("taskset"):
            argv = ["taskset", "-c", ",".join(map(str, cpus)), *argv]
        cpu = CpuWatch(watch)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        other = cpu.other_share()
    result = _parse_load(out.stdout, out.stderr, tool)
    result.other_cpu = round(other, 3)
    return result


def _parse_load(stdout: str, stderr: str, tool: str) -> Load:
    match = re.search(r"^BENCHJSON (\{.*\})$", stdout, re.M)
    if match is None:
        raise RuntimeError(f"{tool} produced no result:\n{stdout}\n{stderr}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    return Load(
        requests=raw["requests"],
        seconds=round(seconds, 2),
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=round(raw["p50_us"] / 1000, 2),
        p90_ms=round(raw["p90_us"] / 1000, 2),
        p99_ms=round(raw["p99_us"] / 1000, 2),
        max_ms=round(raw["max_us"] / 1000, 2),
        errors=errors,
        tool=tool,
        detail={k: raw[k] for k in ("non2xx", "connect", "read", "write", "timeout") if raw[k]},
    )


def warm(url: str, seconds: float = 1.0, **kwargs: Any) -> None:
    """A short unmeasured run, so caches, JITs of the OS and connection setup are out of the measurement."""
    if seconds > 0:
        load(url, duration=seconds, **kwargs)


# --- statistics and output ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): p99 of 300 samples is the 297th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return float("nan")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return str(value)


def write_results(name: str, payload: dict[str, Any], json_out: str | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **payload}
    text = json.dumps(payload, indent=2, default=_json_default)
    stamped = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    stamped.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    if json_out:
        Path(json_out).write_text(text)
    return stamped


# A script's exit status when it ran to the end and missed a target: not 1 (a crash), so run_all tells the two apart
# (a crash is retried, a miss is reported) and a script run alone still fails a CI step that runs it.
MISSED = 3


def report_verdict(name: str, info: dict[str, Any], args: Any, passed: bool, rows: Any) -> int:
    """Write a script's results (machine, arguments, verdict, rows) and print its last line; the exit status:
    0 when every target was met, ``MISSED`` otherwise."""
    path = write_results(name, {"machine": info, "args": vars(args), "passed": passed, "rows": rows}, args.json_out)
    print(f"\nall targets met: {passed}; results in {path}")
    return 0 if passed else MISSED


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
