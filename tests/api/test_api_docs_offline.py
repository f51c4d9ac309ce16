"""The documentation pages work offline: every script, style sheet and icon they load comes from the app itself;
and cross-origin access is off unless HEALTHPIPE_API_CORS_ORIGINS lists the origin."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from pipeline.infra.settings import Settings

ASSET = re.compile(r"""(?:src|href)\s*[=:]\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize(("page", "scripts"), [("/docs", 1), ("/redoc", 1)])
def test_docs_pages_load_their_assets_from_the_app(unreachable_engine: Engine, page: str, scripts: int) -> None:
    with TestClient(create_app(unreachable_engine)) as client:
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assets = [url for url in ASSET.findall(html.text) if not url.startswith("#")]
        assert assets and all(url.startswith("/") and not url.startswith("//") for url in assets), assets
        javascript = [url for url in assets if url.endswith(".js")]
        assert len(javascript) == scripts
        for url in assets:
            answer = client.get(url)
            assert answer.status_code == 200, url
            assert len(answer.content) > (100_000 if url.endswith(".js") else 100), url  # the real bundle
        assert client.get("/openapi.json").json()["info"]["title"] == "healthpipe read API"


def test_no_cross_origin_access_by_default(unreachable_engine: Engine) -> None:
    with TestClient(create_app(unreachable_engine, Settings(api_cors_origins=""))) as client:
        answer = client.get("/v1/me/summary", headers={"Origin": "https://dashboard.example"})
    assert answer.status_code == 401 and "access-control-allow-origin" not in answer.headers


def test_configured_origins_may_call_the_api(unreachable_engine: Engine) -> None:
    settings = Settings(api_cors_origins="https://dashboard.example, http://localhost:5173/")
    with TestClient(create_app(unreachable_engine, settings)) as client:
        preflight = client.options(
            "/v1/me/summary",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        refused = client.get("/v1/me/summary", headers={"Origin": "https://dashboard.example"})
        assert refused.status_code == 401  # an error answer carries the header too: the page can read why
        assert refused.headers["access-control-allow-origin"] == "https://dashboard.example"
        other = client.get("/v1/me/summary", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
