"""``GET /metrics``: the API's route, and the small server a worker or dispatcher runs for it (``--metrics-port``).

The page is the same everywhere: the process's metrics (or, under ``serve --workers N``, the sum over its
processes) with the gauges read from the database brought up to date first, closed by ``REELGATE_METRICS_TOKEN``
when it is set. A worker's server answers ``/metrics`` and ``/healthz`` only, on its own port, in the worker's
event loop: a scrape never waits behind the API, and the API's routes are not served where only workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.api.http import JSON, Endpoint, error_response
from reelgate.api.server import BoundedHttpToolsProtocol
from reelgate.errors import AuthenticationFailed
from reelgate.metrics import BacklogGauges, Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _bearer_matches(request: Request, token: bytes) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Compared as bytes (latin-1 gives back the header's own bytes): compare_digest refuses non-ASCII str.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("latin-1"), token)


def metrics_endpoint(metrics: Metrics, gauges: BacklogGauges, token: str) -> Endpoint:
    """The ``/metrics`` endpoint; with ``token`` set, only ``Authorization: Bearer <token>`` may read it."""
    expected = token.encode()

    async def metrics_page(request: Request) -> Response:
        if expected and not _bearer_matches(request, expected):
            return error_response(AuthenticationFailed(
                "/metrics needs Authorization: Bearer <REELGATE_METRICS_TOKEN>", code="invalid_metrics_token",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'}))  # fmt: skip
        await gauges.update()
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return metrics_page


def metrics_app(metrics: Metrics, gauges: BacklogGauges, token: str) -> Starlette:
    """``/metrics`` and ``/healthz``, for a process that serves no API."""

    async def healthz(request: Request) -> Response:
        return JSON({"status": "ok"})

    return Starlette(routes=[Route("/metrics", metrics_endpoint(metrics, gauges, token), methods=["GET"]),
                             Route("/healthz", healthz, methods=["GET"])])  # fmt: skip


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now, so a port in use is one clear error before the process starts work."""
    return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                reuse_port=False, backlog=128)  # fmt: skip


class _Server(uvicorn.Server):
    """Uvicorn without its signal handling: the process's own handlers stop it (through ``should_exit``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_metrics(app: Starlette, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``sock`` until ``stop`` is set."""
    config = uvicorn.Config(app, http=BoundedHttpToolsProtocol, lifespan="off", access_log=False, log_config=None,
                            timeout_keep_alive=30, timeout_graceful_shutdown=2)  # fmt: skip
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        await asyncio.gather(serving, stopping, return_exceptions=True)
