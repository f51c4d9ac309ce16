"""Where rate-limit counts live: in this process (`InProcessCounters`) or in Redis (`RedisCounters`), shared by
every API worker that points at it. Both count hits per name and fixed window, in O(1) per hit.

A counter is an accelerator's kind of state: losing it only lets a few more requests through. So Redis failing is
never an error of the request: `RedisCounters` answers None (not counted), logs the outage once and leaves Redis
alone for a few seconds, so a gone server costs no request its timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis

logger = logging.getLogger("api.rate_limits")

MAX_IN_PROCESS_NAMES = 100_000
REDIS_RETRY_SECONDS = 5.0


class Counters(Protocol):
    blocking: bool  # whether counting waits on the network (then callers count on a worker thread)

    def increment(self, name: str, window: int, ttl_seconds: int) -> int | None:
        """Count one hit of ``name`` in ``window`` (a window index); the count so far in that window, or None when
        it could not be counted. ``ttl_seconds``: how long a window's count must be kept at least."""
        ...


class InProcessCounters:
    """The counts of the current window in a dict, dropped whole when the next window starts. At most
    ``max_names`` names per window: past that the oldest name is forgotten (its count starts again), so a flood
    of distinct keys cannot grow the process."""

    blocking = False

    def __init__(self, max_names: int = MAX_IN_PROCESS_NAMES) -> None:
        self.max_names = max_names
        self._lock = threading.Lock()  # sync dependencies run on the thread pool
        self._window = -1
        self._counts: dict[str, int] = {}

    def increment(self, name: str, window: int, ttl_seconds: int) -> int:
        with self._lock:
            if window > self._window:  # an older reading of the clock counts in the current window
                self._window = window
                self._counts = {}
            count = self._counts.get(name, 0) + 1
            if count == 1 and len(self._counts) >= self.max_names:
                del self._counts[next(iter(self._counts))]  # dicts keep insertion order: the oldest name
            self._counts[name] = count
            return count


class RedisCounters:
    """One pipelined ``INCR`` + ``EXPIRE`` per hit (one round trip) on ``<namespace>:<name>:<window>``; every API
    worker on the same Redis and namespace shares the counts."""

    blocking = True

    def __init__(self, client: redis.Redis, namespace: str = "healthpipe:ratelimit") -> None:
        self.client = client
        self.namespace = namespace
        self._lock = threading.Lock()
        self._down_until = 0.0  # monotonic time before which Redis is not asked (after a failure)
        self._down = False

    def increment(self, name: str, window: int, ttl_seconds: int) -> int | None:
        if self._down and time.monotonic() < self._down_until:
            return None
        key = f"{self.namespace}:{name}:{window}"
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, ttl_seconds)
            count, _ = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return None
        if self._down:
            with self._lock:
                if self._down:
                    self._down = False
                    logger.warning("rate limits: Redis answers again; requests are counted again")
        return int(count)

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
            if not self._down:
                self._down = True
                # the exception's type only: its message may quote the URL (with a password)
                logger.warning(
                    "rate limits: Redis did not answer (%s); requests are not counted until it does",
                    f"{type(exc).__module__}.{type(exc).__qualname__}",
                )
