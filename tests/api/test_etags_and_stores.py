"""The pure parts of the read cache: If-None-Match matching (RFC 9110's weak comparison), what a key depends on,
and the in-process store's bounds."""

from __future__ import annotations

import datetime as dt

import pytest

from api.etags import ReadKey, none_match_hits
from api.response_cache import MemoryCache
from api.schemas.reads import Period

ETAG = 'W/"0123abcd"'


@pytest.mark.parametrize(
    ("header", "hits"),
    [
        ('W/"0123abcd"', True),
        ('"0123abcd"', True),  # weak comparison: the W/ on either side does not matter
        ('"other", W/"0123abcd"', True),
        ('W/"other",W/"0123abcd" ,', True),
        ("*", True),
        (" * ", True),
        ('"other"', False),
        ('"0123abc"', False),
        ("0123abcd", False),  # not quoted: not an entity-tag
        ('"0123abcd" junk', False),  # not a list of entity-tags: the full answer
        ('*, "0123abcd"', False),
        ("", False),
    ],
)
def test_if_none_match_by_weak_comparison(header: str, hits: bool) -> None:
    assert none_match_hits(header, ETAG) is hits


def test_a_key_changes_with_each_thing_the_answer_depends_on_and_only_with_those() -> None:
    day = dt.date(2024, 5, 1)
    base = ReadKey("shapes1", "summary", "anna", 3, {"date": day})
    same = ReadKey("shapes1", "summary", "anna", 3, {"date": dt.date(2024, 5, 1)})
    assert same.digest == base.digest and same.etag == base.etag == f'W/"{base.digest}"'
    others = [
        ReadKey("shapes2", "summary", "anna", 3, {"date": day}),
        ReadKey("shapes1", "sources", "anna", 3, {"date": day}),
        ReadKey("shapes1", "summary", "ben", 3, {"date": day}),
        ReadKey("shapes1", "summary", "anna", 4, {"date": day}),
        ReadKey("shapes1", "summary", "anna", 3, {"date": dt.date(2024, 5, 2)}),
    ]
    assert len({key.digest for key in [base, *others]}) == 6
    # parameters by name, whatever their order; lists in their order; enums by value
    one = ReadKey("s", "aggregates", "anna", 1, {"types": ["STEPS", "HEART_RATE"], "period": Period.DAY})
    two = ReadKey("s", "aggregates", "anna", 1, {"period": "day", "types": ["STEPS", "HEART_RATE"]})
    swapped = ReadKey("s", "aggregates", "anna", 1, {"period": "day", "types": ["HEART_RATE", "STEPS"]})
    assert one.digest == two.digest != swapped.digest


def test_the_in_process_store_drops_the_least_recently_used_past_its_entries_or_bytes() -> None:
    cache = MemoryCache(max_entries=3, max_bytes=10)
    for key in "abc":
        cache.put(key, b"xx")
    assert cache.get("a") == b"xx"  # recency now b, c, a
    cache.put("d", b"xx")  # a fourth entry: the least recently used, b, goes
    assert cache.get("b") is None and cache.size == (3, 6)  # c, a, d
    cache.put("e", b"12345")  # 3 entries at most: c goes; a, d, e hold 9 bytes
    assert cache.get("c") is None and cache.size == (3, 9)  # a, d, e
    cache.put("d", b"yyyy")  # d replaced by 4 bytes: 2 + 4 + 5 = 11 > 10, so a goes
    assert [cache.get(key) for key in "ade"] == [None, b"yyyy", b"12345"] and cache.size == (2, 9)
    cache.put("f", b"x" * 11)  # larger than the whole budget: not kept, nothing evicted for it
    assert cache.get("f") is None and cache.size == (2, 9)


def test_an_in_process_store_of_no_entries_keeps_nothing() -> None:
    cache = MemoryCache(max_entries=0, max_bytes=1000)
    cache.put("a", b"x")
    assert cache.get("a") is None and cache.size == (0, 0)
