"""The sync body reader and the check for what PostgreSQL cannot store: pure functions, no database."""

from __future__ import annotations

import pyarrow as pa
import pytest

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
