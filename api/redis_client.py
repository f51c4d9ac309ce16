"""The Redis connection the read API's cache and rate limits share when ``HEALTHPIPE_REDIS_URL`` is set.

One client (with its connection pool) per process and URL. Callers treat Redis as an accelerator, never as the
truth: a Redis error must degrade their feature (no cache hit, no counting), not fail the request."""

from __future__ import annotations

from functools import lru_cache

import redis

from pipeline.infra.settings import Settings

# Short timeouts: a slow or gone Redis must cost a request milliseconds, not the client's patience.
SOCKET_TIMEOUT_SECONDS = 0.25


@lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def redis_from_settings(settings: Settings) -> redis.Redis | None:
    """The shared client for the configured URL, or None when the API keeps its cache and counters in-process."""
    if settings.redis_url is None:
        return None
    return _client(settings.redis_url.get_secret_value())
