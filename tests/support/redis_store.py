"""The Redis the tests use (``HEALTHPIPE_TEST_REDIS_URL``, default database 15 of the local server), each test module
under a key prefix of its own that it deletes afterwards: nothing else in that Redis is touched."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

TEST_REDIS_URL_ENV = "HEALTHPIPE_TEST_REDIS_URL"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_url_for_tests() -> str:
    return os.environ.get(TEST_REDIS_URL_ENV, DEFAULT_TEST_REDIS_URL)


@contextmanager
def redis_prefix() -> Iterator[tuple[redis.Redis, str]]:
    """A client and a fresh key prefix; the prefix's keys are deleted at the end. Skips when Redis does not answer."""
    client = redis.Redis.from_url(redis_url_for_tests(), socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {TEST_REDIS_URL_ENV} ({type(exc).__name__})")
    prefix = f"healthpipe-test:{uuid.uuid4().hex[:12]}:"
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
