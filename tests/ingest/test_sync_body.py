"""The sync body reader, the request hash and the check for what PostgreSQL cannot store: pure functions, no
database."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
import pytest

from pipeline.ingest.device_sync import RequestHash, request_hash
from pipeline.ingest.sample_checks import unstorable
from pipeline.ingest.sync_body import SyncBodyError, Unreadable, parse_sync_body


def test_each_sample_keeps_its_text_as_sent() -> None:
    body = b'\xef\xbb\xbf { "x": [1, {"samples": 0}], "samples" :\n[ {"b": 2,  "a":NaN} ,\t"s\\u0000" , 1e400,[ ] ] }\n'
    parsed = parse_sync_body(body, 10)
    assert parsed.texts == ['{"b": 2,  "a":NaN}', '"s\\u0000"', "1e400", "[ ]"]
    assert parsed.samples[1:] == ["s\x00", float("inf"), []]


def test_a_repeated_samples_member_counts_last_as_json_loads_does() -> None:
    assert parse_sync_body(b'{"samples": [1], "samples": [2, 3]}', 10).texts == ["2", "3"]
    with pytest.raises(SyncBodyError):
        parse_sync_body(b'{"samples": [1], "samples": null}', 10)


def test_an_integer_python_will_not_decode_is_one_unreadable_sample() -> None:
    digits = "7" * 5_000
    parsed = parse_sync_body(f'{{"samples": [{{"v": [{digits}]}}, 2]}}'.encode(), 10)
    assert parsed.samples == [Unreadable("holds an integer of more than 4,300 digits"), 2]
    assert parsed.texts == [f'{{"v": [{digits}]}}', "2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"a\\u0000"', True),  # NUL
        ('"a\\\\u0000"', False),  # an escaped backslash, then the text u0000
        ('"a\\\\\\u0000"', True),  # an escaped backslash, then NUL
        ('"\\ud800"', True),  # high surrogate alone
        ('"\\uDC00x"', True),  # low surrogate alone
        ('"\\ud83d\\ude00"', False),  # a pair: one emoji
        ('"\\ud83d\\ude00\\ude00"', True),  # a pair, then a low one alone
        ('"\\ud83d\\ud83d\\ude00"', True),  # a high one alone, then a pair
        ('"caf\\u00e9"', False),
        ('"plain"', False),
    ],
)
def test_nul_and_unpaired_surrogate_escapes_are_found(text: str, expected: bool) -> None:
    assert unstorable(pa.array([text, '"ok"'], pa.large_string())).tolist() == [expected, False]


def test_texts_are_cut_from_the_bytes_as_sent_whatever_the_characters_before_them() -> None:
    body = '\ufeff{"x": "\u00e9\U0001f600", "samples": ["\u00e9", {"k": "\U0001f600"} ,3]}'.encode()
    parsed = parse_sync_body(body, 10)
    assert parsed.texts == ['"\u00e9"', '{"k": "\U0001f600"}', "3"]
    assert [body[start:end] for start, end in zip(parsed.starts, parsed.ends, strict=True)] == [
        text.encode() for text in parsed.texts
    ]
    ascii_after_bom = parse_sync_body(b'\xef\xbb\xbf{"samples": [12, "ab"]}', 10)
    assert (ascii_after_bom.starts, ascii_after_bom.texts) == ([16, 20], ["12", '"ab"'])


def test_an_integer_python_will_not_decode_in_an_ignored_member_is_ignored_with_it() -> None:
    parsed = parse_sync_body(f'{{"note": [{"7" * 5_000}], "samples": [1]}}'.encode(), 10)
    assert parsed.samples == [1]


def test_chunks_cover_every_sample_in_order_within_their_size() -> None:
    parsed = parse_sync_body(b'{"samples": [1, 22, 333, "4444444", 5]}', 10)  # texts end at bytes 14 .. 37
    assert list(parsed.chunks(6)) == [(0, 2), (2, 3), (3, 4), (4, 5)]  # 1, 22 span 13..18; "4444444" is 9 long
    assert list(parsed.chunks(1)) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert list(parsed.chunks(100)) == [(0, 5)]
    assert list(parse_sync_body(b'{"samples": []}', 10).chunks(100)) == []


class Seen:
    """A visitor recording what it is shown."""

    def __init__(self) -> None:
        self.arrays: list[list[Any]] = []

    def start(self) -> None:
        self.arrays.append([])

    def add(self, sample: Any) -> None:
        self.arrays[-1].append(sample)


def test_a_visitor_sees_each_samples_array_decoded_in_order() -> None:
    seen = Seen()
    parse_sync_body(b'{"samples": [1, {"a": [2]}], "other": [9], "samples": []}', 10, seen)
    assert seen.arrays == [[1, {"a": [2]}], []]


@pytest.mark.parametrize(
    "body",
    [
        b'{"samples": []}',
        b'{"samples": [{"b": 1, "a": [1.5, null, NaN, "\\u00e9"]}, "x"]}',
        b'{"samples": [1], "samples": [{"z": 1, "a": 2}]}',
        '\ufeff{"samples" : [ {"type": "STEPS",  "value": 2} ]}'.encode(),
    ],
)
def test_the_request_hash_built_while_reading_is_the_hash_of_the_canonical_json(body: bytes) -> None:
    hasher = RequestHash("watch-\u00e9")
    parsed = parse_sync_body(body, 10, hasher)
    samples = json.loads(body.decode("utf-8-sig"))["samples"]
    canonical = json.dumps({"device": "watch-\u00e9", "samples": samples}, sort_keys=True, separators=(",", ":"))
    assert hasher.hexdigest(parsed) == hashlib.sha256(canonical.encode()).hexdigest()
    assert request_hash("watch-\u00e9", parsed) == hasher.hexdigest(parsed)


def test_a_body_without_canonical_json_is_hashed_by_its_texts_as_sent() -> None:
    texts = ['{"v": ' + "7" * 5_000 + "}", '"\\u00e9"']
    hasher = RequestHash("watch-1")
    parsed = parse_sync_body(('{"samples": [' + ",".join(texts) + "]}").encode(), 10, hasher)
    as_sent = json.dumps({"device": "watch-1", "sampleTexts": texts}, separators=(",", ":"))
    assert hasher.hexdigest(parsed) == hashlib.sha256(as_sent.encode()).hexdigest()
