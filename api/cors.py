"""Cross-origin access for browser dashboards served from elsewhere: only the origins listed in
``HEALTHPIPE_API_CORS_ORIGINS`` (none by default). Keys travel in the Authorization header, never cookies, so
credentials mode stays off."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from pipeline.infra.settings import Settings


def cors_origins(settings: Settings) -> list[str]:
    return [origin.strip().rstrip("/") for origin in settings.api_cors_origins.split(",") if origin.strip()]


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Added last, so it is the outermost middleware: preflights and every answer (errors included) get its
    headers."""
    origins = cors_origins(settings)
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Idempotency-Key"],
        expose_headers=["Idempotent-Replayed", "Retry-After"],
        max_age=600,
    )
