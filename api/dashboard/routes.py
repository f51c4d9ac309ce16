"""The dashboard's routes: ``/`` (the page), ``/sw.js`` (its service worker, which must sit at the root to control
``/``), ``/dashboard/{version}/...`` (our files, cached for a year) and ``/dashboard/vendor/plotly-X.min.js``.
None of them is in the OpenAPI document: they are the page, not the API."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from api.dashboard.assets import Asset, bundle, plotly_asset, plotly_file_name

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def asset_response(request: Request, asset: Asset, cache_control: str) -> Response:
    """The asset, gzipped when the client accepts it; 304 when the client's copy is current."""
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def not_found() -> Response:
    return Response("not found", status_code=404, media_type="text/plain")


def install_dashboard(app: FastAPI) -> None:
    files = bundle()

    @app.get("/", include_in_schema=False, name="dashboard_page")
    def page(request: Request) -> Response:
        response = asset_response(request, files.page, REVALIDATE)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"  # a share code in the fragment never leaves anyway
        return response

    @app.get("/sw.js", include_in_schema=False)
    def service_worker(request: Request) -> Response:
        return asset_response(request, files.worker, REVALIDATE)

    @app.get("/dashboard/vendor/{name}", include_in_schema=False)
    def vendor(request: Request, name: str) -> Response:
        if name != plotly_file_name():
            return not_found()
        return asset_response(request, plotly_asset(), IMMUTABLE)

    @app.get("/dashboard/{version}/{name:path}", include_in_schema=False)
    def own_file(request: Request, version: str, name: str) -> Response:
        asset = files.files.get(name)
        if asset is None:
            return not_found()
        # an older page asking for its version gets today's file, not to be kept
        return asset_response(request, asset, IMMUTABLE if version == files.version else REVALIDATE)
