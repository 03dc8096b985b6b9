"""``/docs`` (security issue 10, finding 11), over real HTTP against ``bm-agent serve``.

It used to load Swagger UI (floating ``@5``, no integrity) and ReDoc from a CDN into the
dashboard's origin, without login, CSP or frame options. Now: a login-gated page whose
scripts and styles come from the agent itself, with the dashboard's security headers.
"""

from __future__ import annotations

import re

import pytest
import requests

from agent.web.apidocs import SWAGGER_UI_VERSION
from tests.support.agentproc import USERS, AgentProc


@pytest.fixture(scope="module")
def agent(module_agent_proc):
    return module_agent_proc(hook=False)


def browser_session(agent: AgentProc, user: str = "view") -> requests.Session:
    sess = requests.Session()
    sess.trust_env = False
    answer = sess.post(agent.url + "/api/v1/auth/login", timeout=30,
                       json={"name": user, "password": USERS[user][1]})
    assert answer.status_code == 200, answer.text
    return sess


def test_docs_needs_a_login(agent):
    anonymous = requests.get(agent.url + "/docs", timeout=30, allow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/ui/login?next=%2Fdocs"
    # A bearer token is no browser session: the page is for the dashboard's staff.
    assert agent.get("/docs", allow_redirects=False).status_code == 303


def test_docs_page_has_no_external_origin_and_the_dashboard_headers(agent):
    with browser_session(agent) as sess:
        page = sess.get(agent.url + "/docs", timeout=30)
        assert page.status_code == 200, page.text
        html = page.text
        assert 'id="swagger-ui"' in html
        assert not re.search(r"(?i)(https?:)?//[a-z0-9]", html), html  # no CDN, no origin
        assert "<script>" not in html and "onload=" not in html  # no inline script
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "http" not in csp and "cdn" not in csp.lower()
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        for src in sources:  # every script and style is served by the agent itself
            asset = sess.get(agent.url + src, timeout=30)
            assert asset.status_code == 200, src
            assert asset.headers["X-Content-Type-Options"] == "nosniff"
    bundle = f"/docs/static/{SWAGGER_UI_VERSION}/swagger-ui-bundle.js"
    assert bundle in sources
    assert f"/docs/static/{SWAGGER_UI_VERSION}/swagger-ui.css" in sources


def test_redoc_is_gone_and_openapi_json_stays_public(agent):
    assert requests.get(agent.url + "/redoc", timeout=30).status_code == 404
    assert requests.get(agent.url + "/docs/oauth2-redirect", timeout=30).status_code == 404
    spec = requests.get(agent.url + "/openapi.json", timeout=30)
    assert spec.status_code == 200 and "/api/v1/auth/login" in spec.json()["paths"]


def test_unknown_docs_assets_are_404(agent):
    for path in ("/docs/static/0.0.0/swagger-ui-bundle.js",
                 f"/docs/static/{SWAGGER_UI_VERSION}/..%2F..%2Fauth.py",
                 f"/docs/static/{SWAGGER_UI_VERSION}/LICENSE"):
        assert requests.get(agent.url + path, timeout=30).status_code == 404, path
