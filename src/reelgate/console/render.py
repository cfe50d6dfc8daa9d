"""Pages from the console's Jinja2 templates (packaged in reelgate/console/templates), with the headers every
console answer carries: never cached, never framed, no script or style from anywhere but here."""

from __future__ import annotations

import hashlib
import time
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from reelgate.console.element_media import element_media
from reelgate.domain import format_credits

CSS_PATH = "/console/static/console.css"
# Media of elements may live in a bucket of their own (an S3 public URL): images and videos from https anywhere.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data: https:; "
    "media-src 'self' https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def when(seconds: float | None) -> str:
    """A Unix time as UTC, to the second; empty for None."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) if seconds else ""


def ago(seconds: float | None, now: float | None = None) -> str:
    """How long ago, in the largest whole unit: "42 s", "5 min", "3 h", "2 d"."""
    if not seconds:
        return ""
    return duration((now or time.time()) - seconds)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = max(0.0, seconds)
    if s < 10:
        return f"{s:.1f} s"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit}"
    return f"{s:.0f} s"


def credits(milli: int | None) -> str:
    return "–" if milli is None else f"{format_credits(int(milli)):,}"


class Pages:
    """The template environment and the stylesheet, built once per app."""

    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("reelgate.console", "templates"), autoescape=select_autoescape(),
                               trim_blocks=True, lstrip_blocks=True)  # fmt: skip
        self.env.filters.update(when=when, ago=ago, duration=duration, credits=credits, q=quote, media=element_media)
        self.env.globals["qs"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v not in (None, "")})
        self.css = resources.files("reelgate.console").joinpath("static/console.css").read_bytes()
        self.css_url = f"{CSS_PATH}?v={hashlib.sha256(self.css).hexdigest()[:12]}"

    def render(self, request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(
            request=request, css_url=self.css_url, path=request.url.path, now=time.time(),
            session=getattr(request.state, "session", None), flash=getattr(request.state, "flash", None),
            **context,
        )  # fmt: skip
        return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)

    def stylesheet(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css", headers={
            "Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"})  # fmt: skip
