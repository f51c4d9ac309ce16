"""Uvicorn's access log without secrets in paths: no query string, no share link code, no user id.

The API takes its key in the Authorization header and no parameter in the query string; a client that sends one
anyway (``?api_key=...``) still gets its request logged, as method, path and status only. A share link's code is the
last segment of ``/v1/shared/{code}``: whoever reads it reads the shared data, so the access log shows
``/v1/shared/<redacted>``; an admin's read of a user, ``/v1/users/<redacted>/summary`` (the audit trail says whose
data it was). Headers and bodies are never in uvicorn's access or error log.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "<redacted>"
# Everything after a "/shared/" segment: the code, and whatever a client appended to it (a trailing slash, a typo).
_SECRET_PATH_TAIL = re.compile(r"(/shared/).*", re.DOTALL)
# The user an admin key reads (``/v1/users/{user_id}/...``): which user was read is the audit trail's to keep
# (app.audit_log), not the access log's, which more people read for longer.
_USER_SEGMENT = re.compile(r"(/users/)[^/]+")


def redacted_path(path: str) -> str:
    """``path`` without its query string, with a share code and a user id replaced by ``<redacted>``."""
    path = _SECRET_PATH_TAIL.sub(lambda found: found.group(1) + REDACTED, path.split("?", 1)[0])
    return _USER_SEGMENT.sub(lambda found: found.group(1) + REDACTED, path)


class RedactPath(logging.Filter):
    """Rewrites an access record's path (uvicorn's arguments: client, method, path, HTTP version, status) with
    `redacted_path`."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redacted_path(args[2]), args[3], args[4])
        return True


def install_access_log_filter() -> None:
    """Idempotent: the filter goes on uvicorn's access logger once, whichever app is built first."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactPath) for f in access.filters):
        access.addFilter(RedactPath())
