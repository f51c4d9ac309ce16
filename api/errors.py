"""Error answers: the documented error bodies every route shares, and the catch-all for unexpected exceptions.

An unexpected exception answers a JSON 500 with a random error id and logs one line: that id, the exception's type,
the route's template and where it was raised. Never the message, the raw path, the body or locals: a database error's
message quotes the data that failed (a sample's value, a key), and paths hold ids.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.outage import OUTAGE_DETAIL, RETRY_AFTER_SECONDS

logger = logging.getLogger("api.errors")

INTERNAL_DETAIL = "internal error"


class Problem(BaseModel):
    """A refused or failed request: `detail` says why."""

    detail: str


class ValidationProblem(BaseModel):
    """A request the API cannot take as sent: the body or a parameter failed validation (`detail` lists each
    problem with its location), or the request contradicts what is stored (`detail` says how)."""

    detail: str | list[dict[str, Any]]


class RateLimitProblem(BaseModel):
    """Too many requests: `limit` requests per `windowSeconds` is the limit `detail` names (per API key, or per
    client address on the public routes)."""

    model_config = ConfigDict(populate_by_name=True)

    detail: str
    limit: int
    window_seconds: int = Field(alias="windowSeconds")


class InternalProblem(BaseModel):
    """An unexpected failure; `errorId` finds its line in the server's log."""

    model_config = ConfigDict(populate_by_name=True)

    detail: str
    error_id: str = Field(alias="errorId")


def _response(description: str, model: type[BaseModel], headers: dict[str, str] | None = None) -> dict[str, Any]:
    documented: dict[str, Any] = {"description": description, "model": model}
    if headers:
        documented["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return documented


UNAUTHORIZED = _response(
    "No bearer API key, or an unknown or revoked one",
    Problem,
    {"WWW-Authenticate": "Bearer"},
)
BAD_REQUEST = _response("The body could not be read as JSON", Problem)
FORBIDDEN = _response("An admin key that belongs to no user", Problem)
NOT_FOUND = _response("The key's user or the named device does not exist", Problem)
TOO_LARGE = _response("The request body or a header is over the size limit", Problem)
UNPROCESSABLE = _response("The request is not valid", ValidationProblem)
UNAVAILABLE = _response(
    f"The database is unavailable ({OUTAGE_DETAIL!r}); retry after the seconds in Retry-After",
    Problem,
    {"Retry-After": f"seconds to wait before retrying ({RETRY_AFTER_SECONDS})"},
)
RATE_LIMITED = _response(
    "Over the rate limit the body names; retry after the seconds in Retry-After (when the counting window ends)",
    RateLimitProblem,
    {"Retry-After": "seconds to wait before retrying (an integer)"},
)
INTERNAL = _response("An unexpected failure, logged with its error id", InternalProblem)
NOT_ADMIN = _response("A user key (this route needs an admin key), or an admin key that belongs to no user", Problem)
NO_SUCH_USER = _response("The user does not exist (for an admin key: the user in the path)", Problem)
NO_SUCH_INSIGHT = _response("The caller has no insight with this id (another user's insight included)", Problem)
NO_SUCH_SHARE = _response("The caller has no share with this id (another user's share included)", Problem)
NO_SUCH_LINK = _response("No live share has this code: unknown, expired and revoked codes answer alike", Problem)

# Every route that takes an API key and reads the database; routes add what else they answer.
KEYED_ROUTE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    429: RATE_LIMITED,
    500: INTERNAL,
    503: UNAVAILABLE,
}


class AsciiJSONResponse(JSONResponse):
    """JSON with everything beyond ASCII escaped: a 422 echoes the input it refused, and an unpaired surrogate in
    it (valid in a JSON escape, not encodable as UTF-8) would otherwise make the refusal itself a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def install_error_handlers(app: FastAPI) -> None:
    """Unexpected exceptions to the catch-all (a 422 is `api.limits`' bounded answer, rendered in ASCII)."""
    app.add_middleware(CatchAllMiddleware)


def route_template(scope: Scope) -> str:
    """The full path template of the route that served the request (``/v1/me/devices/{device_id}/sync``), never the
    raw path with its ids; "unmatched" when no route matched. FastAPI puts the route in the scope with its template
    below its routers' prefixes; those prefixes hold no parameters, so they are the raw path's leading segments."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return "unmatched"
    own = template.strip("/").split("/")
    raw = str(scope.get("path", "")).strip("/").split("/")
    prefix = raw[: max(0, len(raw) - len(own))]
    return "/" + "/".join([*prefix, *own]).strip("/")


def raised_at(exc: BaseException) -> str:
    """``module:line`` of the frame that raised ``exc``, and of the innermost frame in this project's code when that
    is another (a library raised it): where to look, without the message."""
    frames = [(frame.f_globals.get("__name__", "?"), line) for frame, line in traceback.walk_tb(exc.__traceback__)]
    if not frames:
        return "unknown"
    innermost = f"{frames[-1][0]}:{frames[-1][1]}"
    ours = [f"{module}:{line}" for module, line in frames if str(module).split(".")[0] in ("api", "pipeline")]
    if ours and ours[-1] != innermost:
        return f"{innermost} (via {ours[-1]})"
    return innermost


class CatchAllMiddleware:
    """Innermost to Starlette's own error middleware: an exception no handler took ends here as a JSON 500 and one
    log line, and is not re-raised (the server would log it again, message and all)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the point of this middleware
            error_id = secrets.token_hex(8)
            logger.error(
                "internal error %s: %s in %s %s, raised at %s",
                error_id,
                f"{type(exc).__module__}.{type(exc).__qualname__}",
                scope.get("method", "?"),
                route_template(scope),
                raised_at(exc),
            )
            if started:  # the answer is already on its way: nothing more can be sent
                return
            body = InternalProblem(detail=INTERNAL_DETAIL, error_id=error_id).model_dump_json(by_alias=True).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
