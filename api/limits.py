"""Request limits: a body larger than `Settings.api_max_body_bytes` is refused with 413 before it is read (by its
``Content-Length``) or while it streams (a chunked body is counted, never buffered past the limit); a request head
larger than `Settings.api_max_header_bytes` with 431; and a 422's errors are cut to a bounded size (FastAPI's own
handler echoes each invalid input whole). docs/api-limits.md lists them. Nothing of a request is logged."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import AsciiJSONResponse
from pipeline.infra.settings import Settings
from pipeline.ingest.sample_checks import SampleLimits

MAX_VALIDATION_ERRORS = 20
MAX_ECHO_CHARS = 200


def body_too_large(limit: int) -> str:
    return f"request body over the limit of {limit:,} bytes (HEALTHPIPE_API_MAX_BODY_BYTES)"


def head_too_large(limit: int) -> str:
    return f"request line and headers over the limit of {limit:,} bytes (HEALTHPIPE_API_MAX_HEADER_BYTES)"


class RequestSizeLimits:
    """ASGI middleware enforcing the head and body limits."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(name) + len(value) + 4 for name, value in scope["headers"])  # ": " and CRLF
        if head > self.max_header_bytes:
            await JSONResponse({"detail": head_too_large(self.max_header_bytes)}, 431)(scope, receive, send)
            return
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            response = JSONResponse({"detail": body_too_large(self.max_body_bytes)}, 413, {"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # raised where the route reads its body; FastAPI answers it as any HTTPException
                    raise HTTPException(413, body_too_large(self.max_body_bytes), {"Connection": "close"})
            return message

        await self.app(scope, counted, send)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ECHO_CHARS else f"{text[:MAX_ECHO_CHARS]}... ({len(text):,} characters)"


def _summary(value: Any) -> Any:
    """A bounded stand-in for an invalid input: scalars as they are (cut when text), containers by their size."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float) or value is None:
        return value if not isinstance(value, int) or abs(value) < 10**MAX_ECHO_CHARS else "a very long integer"
    if isinstance(value, dict):
        return f"an object of {len(value):,} members"
    if isinstance(value, list | tuple):
        return f"an array of {len(value):,} items"
    return _cut(type(value).__name__)


def bounded_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """At most `MAX_VALIDATION_ERRORS` errors, each with its message, location and input cut short."""
    bounded = []
    for error in errors[:MAX_VALIDATION_ERRORS]:
        entry = {key: error[key] for key in ("type", "loc", "msg") if key in error}
        entry["loc"] = [_cut(str(part)) if isinstance(part, str) else part for part in entry.get("loc", ())]
        entry["msg"] = _cut(str(entry.get("msg", "")))
        if "input" in error:
            entry["input"] = _summary(error["input"])
        if isinstance(error.get("ctx"), dict):
            entry["ctx"] = {key: _summary(value) for key, value in list(error["ctx"].items())[:10]}
        bounded.append(entry)
    return bounded


async def _bounded_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    content: dict[str, Any] = {"detail": bounded_errors(errors)}
    if len(errors) > MAX_VALIDATION_ERRORS:
        content["omittedErrors"] = len(errors) - MAX_VALIDATION_ERRORS
    # in ASCII: an input echoed with an unpaired surrogate (valid as a JSON escape) cannot be encoded as UTF-8
    return AsciiJSONResponse(status_code=422, content=jsonable_encoder(content))


def sample_limits(request: Request) -> SampleLimits:
    """The per-sample limits of device sync, as `install_request_limits` set them."""
    limits: SampleLimits = getattr(request.app.state, "sample_limits", SampleLimits())
    return limits


def install_request_limits(app: FastAPI, settings: Settings) -> None:
    """The size limits of requests and of synced samples, from the settings, and the bounded 422."""
    app.state.sample_limits = SampleLimits(settings.sync_max_text_chars, settings.sync_max_metadata_bytes)
    app.add_middleware(
        RequestSizeLimits,
        max_body_bytes=settings.api_max_body_bytes,
        max_header_bytes=settings.api_max_header_bytes,
    )
    app.add_exception_handler(RequestValidationError, _bounded_validation_error)
