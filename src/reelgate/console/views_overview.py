"""The overview: is the work getting done, and what needs an operator now (the first page after signing in)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelgate.console.charts import stacked_bars
from reelgate.console.context import Console
from reelgate.console.security import signed_in

AXIS = {"hour": ("60 min ago", "30 min ago", "now"), "day": ("24 h ago", "12 h ago", "now")}


def routes(console: Console) -> list[Route]:
    async def overview(request: Request) -> Response:
        window = "day" if request.query_params.get("window") == "day" else "hour"
        o = await console.oversight.overview(window)
        # Stacked from the bottom: finished first, then what is still running or waiting.
        series = {s: o.series[s] for s in ("completed", "failed", "processing", "pending")}
        unit = "minute" if window == "hour" else "hour"
        chart = stacked_bars(series, title=f"Tasks submitted per {unit} over the last {window}, by status now",
                             labels=AXIS[window])  # fmt: skip
        return console.pages.render(request, "overview.html", title="Overview", o=o, chart=chart, window=window,
                                    legend=[(s, sum(v)) for s, v in series.items()])  # fmt: skip

    return [Route("/", signed_in(console.admins, overview), methods=["GET"])]
