"""``/docs``: the API's Swagger UI, served from the package, behind the dashboard login.

FastAPI's own ``/docs`` and ``/redoc`` loaded Swagger UI and ReDoc from a CDN (a floating
``@5``, no integrity check) into the dashboard's origin, without login, CSP or frame
options (security issue 10, finding 11). Here:

- the Swagger UI files are vendored, pinned, in ``agent/web/static/swagger-ui/`` (version,
  licence and hashes in its ``VERSION.md``) and served at
  ``/docs/static/<version>/<name>``; the starter script is the dashboard's ``docs-init.js``;
- ``/docs`` needs a dashboard session (else a redirect to ``/ui/login?next=/docs``): the
  page can send requests with the session, so it is a staff page like the others;
- the page gets the dashboard's headers (``agent.web.access.secure``): CSP ``'self'`` only
  (no CDN origin, no inline script), ``frame-ancestors 'none'`` and ``X-Frame-Options:
  DENY``, ``nosniff``, ``Referrer-Policy: same-origin``;
- ReDoc is dropped; ``/openapi.json`` stays public (the API's shape is no secret, and
  clients and the schemathesis test read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from agent.accounts.auth import Authenticator
from agent.web.access import secure, session_principal
from agent.web.pages import static_prefix
from agent.web.templating import escape

__all__ = ["SWAGGER_UI_VERSION", "build_docs_router"]

SWAGGER_UI_VERSION = "5.35.0"
_FILES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
          "swagger-ui.css": "text/css; charset=utf-8"}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bm-agent API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{static}/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{static}/docs-init.js"></script>
</body>
</html>
"""


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str


def _load_assets() -> dict[str, _Asset]:
    root = resources.files("agent.web").joinpath("static", "swagger-ui")
    return {name: _Asset(root.joinpath(name).read_bytes(), media)
            for name, media in _FILES.items()}


def build_docs_router(auth: Authenticator) -> APIRouter:
    """Return the ``/docs`` page and its assets (include without a prefix)."""
    router = APIRouter(include_in_schema=False)
    assets = _load_assets()
    prefix = f"/docs/static/{SWAGGER_UI_VERSION}"
    page = _PAGE.format(assets=escape(prefix), static=escape(static_prefix())).encode()

    @router.get("/docs")
    def docs(request: Request) -> Response:
        if session_principal(auth, request) is None:
            return secure(RedirectResponse("/ui/login?next=%2Fdocs", status_code=303))
        return secure(HTMLResponse(page))

    @router.get("/docs/static/{version}/{name}")
    def docs_asset(version: str, name: str) -> Response:
        asset = assets.get(name)
        if asset is None or version != SWAGGER_UI_VERSION:
            return secure(Response(status_code=404))
        return secure(Response(asset.body, media_type=asset.media_type),
                      cache="public, max-age=31536000, immutable")

    return router
