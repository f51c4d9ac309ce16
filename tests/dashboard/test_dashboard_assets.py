"""How the dashboard's files are served: the page revalidated, our files under a version and cached for a year,
plotly.js from the installed plotly wheel, everything gzipped for clients that accept it, none of it in the
OpenAPI document, nothing referring to another host."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.dashboard.assets import bundle, plotly_file_name
from api.main import create_app


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as test_client:
        yield test_client


def test_the_page_names_its_versioned_files_and_is_revalidated(client: TestClient) -> None:
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache" and page.headers["content-encoding"] == "gzip"
    version = bundle().version
    assert f"/dashboard/{version}/js/app.js" in page.text and f"/dashboard/vendor/{plotly_file_name()}" in page.text
    again = client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_own_files_are_cached_for_a_year_and_gzipped_only_when_accepted(client: TestClient) -> None:
    path = f"/dashboard/{bundle().version}/js/app.js"
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in plain.headers and plain.headers["content-type"].startswith("text/javascript")
    packed = client.get(path, headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == plain.content  # the client decoded it
    assert int(packed.headers["content-length"]) == len(gzip.compress(plain.content, 6, mtime=0))
    assert client.get("/dashboard/0000/js/app.js").headers["cache-control"] == "no-cache"  # not this version
    assert client.get(f"/dashboard/{bundle().version}/js/nothing.js").status_code == 404


def test_plotly_js_is_the_wheels_own_file(client: TestClient) -> None:
    answer = client.get(f"/dashboard/vendor/{plotly_file_name()}", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200 and answer.headers["content-encoding"] == "gzip"
    assert answer.content == (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    assert client.get("/dashboard/vendor/other.js").status_code == 404


def test_the_service_worker_sits_at_the_root_and_names_the_version(client: TestClient) -> None:
    worker = client.get("/sw.js")
    assert worker.headers["cache-control"] == "no-cache" and bundle().version in worker.text


def test_no_file_loads_anything_from_another_host_and_none_is_in_the_openapi_document(client: TestClient) -> None:
    for name, asset in bundle().files.items():
        assert not re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", asset.body), name
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith(("/dashboard", "/sw.js"))]
