"""``/docs``: the interactive API reference, Swagger UI over ``/openapi.json``, served entirely by Reelgate.

Swagger UI comes from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which renders OpenAPI 3.1): its files are
served under ``/docs/assets/<Swagger UI version>/``, so an upgrade changes every asset URL and the assets can be
cached for a year. Nothing is fetched from another origin (the page's Content-Security-Policy allows only this
one), and Swagger UI's online validator badge is switched off.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from dataclasses import dataclass
from functools import cache

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from swagger_ui_bundle import swagger_ui_path

from reelgate.api.http import error_response
from reelgate.errors import NotFound

SWAGGER_UI_VERSION: str = swagger_ui_path.name.removeprefix("swagger-ui-")
ASSETS = f"docs/assets/{SWAGGER_UI_VERSION}"  # relative to /docs, so a path prefix in front of Reelgate still works
_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui.css.map": "application/json",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-bundle.js.map": "application/json",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
_FOREVER = "public, max-age=31536000, immutable"

_INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json", dom_id: "#swagger-ui", presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout",
  deepLinking: true, validatorUrl: null, displayRequestDuration: true, docExpansion: "list", filter: true,
  defaultModelsExpandDepth: 0, showExtensions: false, tryItOutEnabled: false
});"""
_INIT_HASH = base64.b64encode(hashlib.sha256(_INIT.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; script-src 'self' 'sha256-{_INIT_HASH}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reelgate API reference</title>
<link rel="icon" type="image/png" sizes="32x32" href="{ASSETS}/favicon-32x32.png">
<link rel="icon" type="image/png" sizes="16x16" href="{ASSETS}/favicon-16x16.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<noscript>The interactive reference needs JavaScript; the document itself is at <a href="openapi.json">/openapi.json
</a>.</noscript>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script>{_INIT}</script>
</body>
</html>
"""


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    media_type: str


@cache
def _asset(name: str) -> _Asset:
    """One packaged file, read (and compressed) once, on first use: 1.5 MB of JavaScript is 0.4 MB gzipped."""
    body = (swagger_ui_path / name).read_bytes()
    return _Asset(body, gzip.compress(body, compresslevel=9, mtime=0), _TYPES[name])


def _accepts_gzip(request: Request) -> bool:
    return any(part.split(";")[0].strip().lower() == "gzip"
               for part in request.headers.get("accept-encoding", "").split(","))  # fmt: skip


async def docs(request: Request) -> Response:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache",
                                       "X-Content-Type-Options": "nosniff"})  # fmt: skip


async def asset(request: Request) -> Response:
    version, name = request.path_params["version"], request.path_params["name"]
    if version != SWAGGER_UI_VERSION or name not in _TYPES:
        return error_response(NotFound(f"no route GET {request.url.path}", code="route_not_found"))
    found = _asset(name)
    headers = {"Cache-Control": _FOREVER, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff"}
    if _accepts_gzip(request):
        return Response(found.gzipped, media_type=found.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.body, media_type=found.media_type, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/docs", docs, methods=["GET"]),
        Route("/docs/assets/{version}/{name}", asset, methods=["GET"]),
    ]
