"""Where the read API keeps serialized answers: in this process (a bounded LRU) or in Redis (shared by every API
worker). Keys come from `api.etags.ReadKey`: they hold the user's data version, so a write never has to find and
delete entries; new versions simply miss, and old entries age out (LRU eviction here, a TTL in Redis).

A store is an accelerator, never the truth: `RedisCache` answers "not cached" and drops writes while Redis fails
(the request is computed from the database as without a cache), logs the first failure of each outage and leaves
Redis alone for a few seconds, so an outage costs requests no timeouts."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Protocol

import redis

from api.redis_client import redis_from_settings
from pipeline.infra.settings import Settings

logger = logging.getLogger("api.response_cache")

KEY_PREFIX = "healthpipe:"
RETRY_AFTER_FAILURE_SECONDS = 5.0


class ResponseCache(Protocol):
    blocking: bool  # whether a lookup waits on the network (then it is made on a worker thread)

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, body: bytes) -> None: ...


class MemoryCache:
    """Least recently used entries go first once there are more than ``max_entries`` or their bodies add up to more
    than ``max_bytes``; a body larger than ``max_bytes`` is not kept. ``max_entries`` 0: nothing is kept. Safe across
    the threads of one process (FastAPI runs sync routes in a thread pool)."""

    blocking = False

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        if self.max_entries == 0 or len(body) > self.max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous)
            self._entries[key] = body
            self._bytes += len(body)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    @property
    def size(self) -> tuple[int, int]:
        """(entries, bytes) held."""
        with self._lock:
            return len(self._entries), self._bytes


class RedisCache:
    """Entries under ``prefix`` (``healthpipe:`` and the answers' shape fingerprint: a deploy that changes a response
    model never reads the previous shape), each with a TTL."""

    blocking = True

    def __init__(self, client: redis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self._down_until = 0.0
        self._failing = False

    def get(self, key: str) -> bytes | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            body = self.client.get(self.prefix + key)
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        self._failing = False
        return body if isinstance(body, bytes) else None

    def put(self, key: str, body: bytes) -> None:
        if time.monotonic() < self._down_until:
            return
        try:
            self.client.set(self.prefix + key, body, ex=self.ttl_seconds)
        except redis.RedisError as exc:
            self._failed(exc)

    def _failed(self, exc: redis.RedisError) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        if not self._failing:  # the type only: a Redis error's message can quote the URL, password included
            logger.warning(
                "response cache: Redis failed (%s); answering from the database, retrying Redis in %.0f s",
                type(exc).__name__,
                RETRY_AFTER_FAILURE_SECONDS,
            )
        self._failing = True


def cache_from_settings(settings: Settings, shapes: str) -> ResponseCache:
    """Redis when ``HEALTHPIPE_REDIS_URL`` is set, else this process's LRU. ``shapes`` names the response models'
    version (a fingerprint of their schemas) in Redis keys."""
    client = redis_from_settings(settings)
    if client is None:
        return MemoryCache(settings.api_cache_max_entries, settings.api_cache_max_bytes)
    return RedisCache(client, f"{KEY_PREFIX}{shapes}:", settings.api_cache_ttl_seconds)
