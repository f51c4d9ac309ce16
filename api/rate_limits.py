"""Rate limits: per API key on every keyed route (`Settings.api_rate_limit_per_minute`), and per client address on
the public routes that depend on `limit_per_client` (`Settings.api_public_rate_limit_per_minute`).

Counted in fixed one-minute windows, in the same kind of store as the response cache: this process by default,
Redis when ``HEALTHPIPE_REDIS_URL`` is set (every worker then shares the counts; `api.rate_counters`). A request
over the limit answers 429 with ``Retry-After`` (the seconds until its window ends) and a body naming the limit.
A key is counted by its hash, an address by a hash of it: neither is ever a counter's name in clear. A key is
counted before it is looked up, so a flood of requests is refused without borrowing a database connection.

Behind a reverse proxy the client address is the one uvicorn reports: run it with ``--forwarded-allow-ips`` set to
the proxy's address so that it takes the client's from ``X-Forwarded-For`` (else every client is the proxy).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import RateLimitProblem
from api.rate_counters import Counters, InProcessCounters, RedisCounters
from api.redis_client import redis_from_settings
from pipeline.accounts import hash_key
from pipeline.infra.settings import Settings

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Limit:
    """``per_window`` requests per window of one caller; 0: unlimited. ``what`` names whose requests, ``setting``
    the variable that sets it (both go into the 429's detail)."""

    scope: str
    per_window: int
    what: str
    setting: str


class RateLimitExceededError(Exception):
    def __init__(self, limit: Limit, retry_after: int) -> None:
        super().__init__(limit.scope)
        self.limit = limit
        self.retry_after = retry_after


class RateLimits:
    """The app's limits and their counters (``app.state.rate_limits``)."""

    def __init__(
        self, counters: Counters, per_key: int, per_client: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.counters = counters
        self.clock = clock
        self.per_key = Limit("key", per_key, "per API key", "HEALTHPIPE_API_RATE_LIMIT_PER_MINUTE")
        self.per_client = Limit(
            "client", per_client, "per client address", "HEALTHPIPE_API_PUBLIC_RATE_LIMIT_PER_MINUTE"
        )

    @classmethod
    def from_settings(cls, settings: Settings, namespace: str = "healthpipe:ratelimit") -> RateLimits:
        client = redis_from_settings(settings)
        counters: Counters = InProcessCounters() if client is None else RedisCounters(client, namespace)
        return cls(counters, settings.api_rate_limit_per_minute, settings.api_public_rate_limit_per_minute)

    def hit(self, limit: Limit, identity: str) -> None:
        """Count one request of ``identity`` (already a hash); `RateLimitExceededError` when it is over the limit."""
        if limit.per_window <= 0:
            return
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        count = self.counters.increment(f"{limit.scope}:{identity}", window, 2 * WINDOW_SECONDS)
        if count is not None and count > limit.per_window:
            raise RateLimitExceededError(limit, max(1, math.ceil((window + 1) * WINDOW_SECONDS - now)))

    def hit_key(self, key: str) -> None:
        self.hit(self.per_key, hash_key(key).hex()[:32])

    def hit_client(self, address: str) -> None:
        self.hit(self.per_client, hashlib.sha256(f"client:{address}".encode()).hexdigest()[:32])


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


def limit_per_client(request: Request) -> None:
    """Dependency of a public (keyless) route: count the request against its client address's limit (429 over
    it). The address is uvicorn's (see the module's note on proxies)."""
    rate_limits(request).hit_client(request.client.host if request.client else "unknown")


def rate_limited_response(exc: RateLimitExceededError) -> JSONResponse:
    limit = exc.limit
    problem = RateLimitProblem(
        detail=f"rate limit of {limit.per_window:,} requests per minute {limit.what} exceeded ({limit.setting}); "
        f"retry after {exc.retry_after} s",
        limit=limit.per_window,
        window_seconds=WINDOW_SECONDS,
    )
    return JSONResponse(
        status_code=429,
        content=problem.model_dump(by_alias=True),
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceededError)
    return rate_limited_response(exc)


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """The limits and counters from the settings, and the 429 answer."""
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.add_exception_handler(RateLimitExceededError, _rate_limited)
