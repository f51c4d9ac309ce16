"""Uvicorn's access log without query strings: a key or a value put in a URL by a client must not reach the log.

The API takes its key in the Authorization header and no parameter in the query string; a client that sends one
anyway (``?api_key=...``) still gets its request logged, as method, path and status only. Headers and bodies are
never in uvicorn's access or error log.
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class DropQueryString(logging.Filter):
    """Rewrites an access record's path (uvicorn's arguments: client, method, path, HTTP version, status) to drop
    everything from the ``?``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def install_access_log_filter() -> None:
    """Idempotent: the filter goes on uvicorn's access logger once, whichever app is built first."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryString) for f in access.filters):
        access.addFilter(DropQueryString())
