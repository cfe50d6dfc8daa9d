"""The ceiling: a bare endpoint answering a small JSON object, served exactly like ``reelgate serve``.

Run: ``.venv/bin/python bench/ceiling_app.py --port 8791 --workers 2`` and GET /v1/tasks/hello. The uvicorn options
below are a copy of the ones in src/reelgate/cli/serve.py ``serve`` (uvloop, Reelgate's httptools protocol with its
header and per-client limits, no access log, same limits); it applies the same garbage-collector settings once
started (reelgate/heap.py); and the endpoint is reached the way Reelgate's task query is (reelgate/api/hot_path.py:
straight from the application to the endpoint, past Starlette's middleware and router). So the only difference
from Reelgate's hot routes is the work the routes do. Keep them in step with ``serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

try:  # the protocol ``reelgate serve`` runs: uvicorn's httptools protocol plus header/connection limits
    from reelgate.api.server import BoundedHttpToolsProtocol as SERVE_PROTOCOL
except ImportError:  # an older tree: plain httptools, as serve used then
    SERVE_PROTOCOL = "httptools"  # type: ignore[assignment,misc]
try:  # the way ``reelgate serve`` reaches its hot routes
    from reelgate.api.hot_path import HotPathApp
except ImportError:  # an older tree: through Starlette's router, as serve did then
    HotPathApp = None  # type: ignore[assignment,misc]
try:  # the garbage-collector settings ``reelgate serve`` applies once started
    from reelgate.heap import freeze_startup_objects
except ImportError:  # an older tree: Python's defaults, as serve used then

    def freeze_startup_objects() -> None:
        return None


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"object": "hello", "status": "ok", "progress": 100})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    freeze_startup_objects()
    yield


def make_app() -> Starlette:
    routes = [Route("/v1/tasks/{task_id}", hello, methods=["GET"])]
    if HotPathApp is None:
        return Starlette(routes=routes, lifespan=lifespan)
    return HotPathApp(submit=hello, get_task=hello, routes=routes, lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # worker processes import "ceiling_app:make_app"
    uvicorn.run(
        "ceiling_app:make_app", factory=True, host=args.host, port=args.port, workers=args.workers if args.workers > 1 else None,
        loop="uvloop", http=SERVE_PROTOCOL, access_log=False, log_config=None, timeout_keep_alive=30,
        timeout_graceful_shutdown=10, backlog=2048, limit_concurrency=4096, log_level="warning",
    )  # fmt: skip


if __name__ == "__main__":
    main()
