"""The dashboard's files as immutable in-memory assets: bytes, their gzip form and an ETag, loaded once per app.

Our own files are addressed under a version (a hash of all of them), so they can be cached for a year: a new release
changes the version the page names. The page (``index.html``) and the service worker are revalidated every time.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.metadata import version as package_version
from pathlib import Path

STATIC = resources.files("api.dashboard") / "static"
VERSION_PLACEHOLDER = "__DASHBOARD_VERSION__"
PLOTLY_PLACEHOLDER = "__PLOTLY_FILE__"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
MIN_GZIP_BYTES = 512


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compressing would not pay
    media_type: str
    etag: str


def make_asset(body: bytes, name: str) -> Asset:
    media_type = _TYPES.get(Path(name).suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    gzipped = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= MIN_GZIP_BYTES else None
    return Asset(body, gzipped, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _own_files() -> dict[str, bytes]:
    """Every file under static/, by its path relative to it (``js/app.js``)."""
    found: dict[str, bytes] = {}
    pending = [(STATIC, "")]
    while pending:
        folder, prefix = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((entry, f"{prefix}{entry.name}/"))
            elif not entry.name.startswith("."):
                found[prefix + entry.name] = entry.read_bytes()
    return found


def plotly_file_name() -> str:
    return f"plotly-{package_version('plotly')}.min.js"


@cache
def plotly_asset() -> Asset:
    """plotly.min.js as the installed plotly wheel carries it (compressed on first use: 4.8 MB to about 1.4)."""
    return make_asset((resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes(), "plotly.min.js")


@dataclass(frozen=True)
class Bundle:
    version: str
    files: dict[str, Asset]  # versioned: js/..., app.css, ...
    page: Asset  # index.html, naming the version
    worker: Asset  # sw.js, naming the version (a new release installs a new worker)


@cache
def bundle() -> Bundle:
    raw = _own_files()
    digest = hashlib.sha256()
    for name in sorted(raw):
        digest.update(name.encode() + b"\0" + raw[name] + b"\0")
    digest.update(plotly_file_name().encode())
    version = digest.hexdigest()[:12]

    def named(body: bytes) -> bytes:
        return body.replace(VERSION_PLACEHOLDER.encode(), version.encode()).replace(
            PLOTLY_PLACEHOLDER.encode(), plotly_file_name().encode()
        )

    page = make_asset(named(raw.pop("index.html")), "index.html")
    worker = make_asset(named(raw.pop("sw.js")), "sw.js")
    files = {name: make_asset(named(body), name) for name, body in raw.items()}
    return Bundle(version, files, page, worker)
