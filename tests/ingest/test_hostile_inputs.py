"""Files built to break the importers: values PostgreSQL cannot store, bytes that are not UTF-8, lines without end,
exports that are nothing but padding. Each bad line is a reject with its reason and its bytes; the rest lands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from pipeline.infra.database import psycopg_connection
from pipeline.ingest import text_lines
from pipeline.ingest.importer import IncompleteImportError, import_file
from pipeline.ingest.text_lines import escape_bytes, unescape_bytes
from pipeline.privacy import reads
from pipeline.synthetic.hostile import padded_export_zip
from tests.support.helpers import new_user

SAMPLE = {
    "type": "STEPS",
    "unit": "count",
    "startDate": "2024-01-01T10:00:00Z",
    "endDate": "2024-01-01T10:01:00Z",
    "sourceDevice": "iPhone",
}


def _line(value: int) -> str:
    return json.dumps(SAMPLE | {"value": value})


def _quarantine(engine: Engine, batch_id: int) -> list[tuple[str, dict[str, object]]]:
    """(reason, payload) of the batch's rejects, in order, payloads decrypted."""
    with psycopg_connection(engine) as conn:
        rows = reads.quarantined(conn, batch_id=batch_id)
    return [(row.reason, dict(json.loads(row.payload))) for row in rows]


def _landed_values(engine: Engine, batch_id: int) -> list[float]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT value FROM raw.samples WHERE batch_id = :b ORDER BY value"), {"b": batch_id})
        return [float(row[0]) for row in rows]


POISON = [
    ('{"type": "STEPS", "value": NaN}', "NaN is not a JSON number"),
    ('{"type": "STEPS", "value": Infinity}', "Infinity is not a JSON number"),
    ('{"type": "STEPS", "value": -Infinity}', "-Infinity is not a JSON number"),
    (_line(1)[:-1] + ', "extra": 1e400}', "number out of range"),
    (_line(1).replace('"value": 1', '"value": ' + "9" * 4000), "number out of range"),
    (_line(1)[:-1] + ', "metadata": "hello"}', "metadata is not a JSON object"),
    (_line(1).replace("iPhone", "iPh\\u0000one"), "text holds a NUL character (\\u0000)"),
    (_line(1)[:-1] + ', "metadata": {"k\\u0000": 1}}', "text holds a NUL character (\\u0000)"),
    (_line(1).replace("iPhone", "iPh\\ud800one"), "text holds a lone surrogate (\\ud800-\\udfff)"),
]


def test_ndjson_lines_with_values_postgresql_cannot_store_are_rejects_and_the_rest_lands(
    engine: Engine, tmp_path: Path
) -> None:
    user = new_user(engine)
    path = tmp_path / "poison.ndjson"
    path.write_text("\n".join([_line(100), *(line for line, _ in POISON), _line(200)]) + "\n", encoding="utf-8")

    report = import_file(engine, path, user)

    c = report.counts
    assert (c.read, c.landed, c.rejected, c.duplicates, c.skipped) == (11, 2, 9, 0, 0)
    assert _landed_values(engine, report.batch_id) == [100.0, 200.0]
    kept = _quarantine(engine, report.batch_id)
    assert [reason for reason, _ in kept] == [reason for _, reason in POISON]
    assert [payload for _, payload in kept] == [
        {"lineNumber": number, "line": line} for number, (line, _) in enumerate(POISON, start=2)
    ]


def test_a_line_that_is_not_utf8_is_a_reject_naming_its_line_with_its_bytes_escaped(
    engine: Engine, tmp_path: Path
) -> None:
    user = new_user(engine)
    broken = _line(150).replace("iPhone", "iPh\udcffone").encode("utf-8", "surrogateescape")  # a lone 0xff byte
    nul = _line(160).replace("iPhone", "iPh\x00one").encode()  # a raw NUL byte: no text PostgreSQL stores
    path = tmp_path / "latin.ndjson"
    path.write_bytes(b"\n".join([_line(100).encode(), broken, nul, _line(200).encode()]) + b"\n")

    report = import_file(engine, path, user)

    assert (report.counts.read, report.counts.landed, report.counts.rejected) == (4, 2, 2)
    column = broken.index(b"\xff") + 1
    kept = _quarantine(engine, report.batch_id)
    assert kept == [
        (
            f"line 2: not UTF-8 text (byte 0xff at column {column})",
            {"lineNumber": 2, "lineEscaped": escape_bytes(broken)},
        ),
        (f"line 3: text holds a NUL byte (column {column})", {"lineNumber": 3, "lineEscaped": escape_bytes(nul)}),
    ]
    assert [unescape_bytes(str(payload["lineEscaped"])) for _, payload in kept] == [broken, nul]


def test_csv_rows_that_are_not_utf8_or_hold_a_nul_are_rejects_and_the_rest_lands(
    engine: Engine, tmp_path: Path
) -> None:
    user = new_user(engine)
    header = b"type,value,unit,startDate,endDate,sourceDevice,metadata\n"
    row = "STEPS,{},count,2024-01-01T10:00:00Z,2024-01-01T10:01:00Z,{},{}\n"
    rows = [
        row.format(100, "iPhone", "").encode(),
        row.format(110, "Caf\xe9", "").encode("latin-1"),
        row.format(120, "iPh\x00one", "").encode(),
        row.format(130, "iPhone", '"{""a"": NaN}"').encode(),  # metadata that is no storable JSON: kept as text
        row.format(140, '"two\nlines"', "").encode(),  # a quoted cell across lines is one row
        row.format(200, "iPhone", "").encode(),
    ]
    path = tmp_path / "latin.csv"
    path.write_bytes(header + b"".join(rows))

    report = import_file(engine, path, user)

    assert (report.counts.read, report.counts.landed, report.counts.rejected) == (6, 4, 2)
    assert _landed_values(engine, report.batch_id) == [100.0, 130.0, 140.0, 200.0]
    assert _quarantine(engine, report.batch_id) == [
        (
            f"line 3: not UTF-8 text (byte 0xe9 at column {rows[1].index(0xE9) + 1})",
            {"lineNumber": 3, "lineEscaped": rows[1][:-1].decode("latin-1").replace("\xe9", "\\xe9")},
        ),
        (
            f"line 4: text holds a NUL byte (column {rows[2].index(0) + 1})",
            {"lineNumber": 4, "lineEscaped": rows[2][:-1].decode().replace("\x00", "\\x00")},
        ),
    ]
    with psycopg_connection(engine) as conn:
        (identity,) = conn.execute(
            "SELECT identity FROM raw.samples WHERE batch_id = %s AND value = 130", (report.batch_id,)
        ).fetchone() or (None,)
        metadata = reads.sample_metadata(conn, user, batch_id=report.batch_id)
    assert json.loads(metadata[identity]) == {"text": '{"a": NaN}'}  # type: ignore[index]


def test_a_line_longer_than_the_bound_is_passed_over_and_rejected_with_its_length(
    engine: Engine, tmp_path: Path
) -> None:
    """A line without end is never held whole: its first KiB and its length are kept."""
    user = new_user(engine)
    long_line = b"x" * (3 * text_lines.MAX_LINE_BYTES)
    path = tmp_path / "long.ndjson"
    path.write_bytes(_line(100).encode() + b"\n" + long_line + b"\n" + _line(200).encode() + b"\n" + long_line)

    report = import_file(engine, path, user)

    assert (report.counts.read, report.counts.landed, report.counts.rejected) == (4, 2, 2)
    bound = f"{text_lines.MAX_LINE_BYTES:,}"
    assert _quarantine(engine, report.batch_id) == [
        (
            f"line {n} longer than {bound} bytes",
            {"lineNumber": n, "lineStartEscaped": "x" * 1024, "bytes": len(long_line)},
        )
        for n in (2, 4)
    ]


@pytest.mark.parametrize(
    ("filler", "what"),
    [
        (b"\0", "line 1 (byte 12): a NUL byte"),
        (b"a", "line 1 (byte 0): 9,437,184 bytes without a tag boundary (an element is at most 8,388,608)"),
    ],
)
def test_an_export_that_is_its_root_then_padding_stops_at_the_bound_as_damaged(
    engine: Engine, tmp_path: Path, filler: bytes, what: str
) -> None:
    user = new_user(engine)
    path = padded_export_zip(tmp_path / "export.zip", 32 << 20, filler)

    with pytest.raises(IncompleteImportError) as fault:
        import_file(engine, path, user)

    assert str(fault.value) == f"export.zip is damaged at {what}; the 0 records before it were read, nothing after it"
    assert fault.value.report.counts.read == 0


def test_a_broken_line_cannot_borrow_brackets_or_quotes_from_its_neighbours(engine: Engine, tmp_path: Path) -> None:
    """Parsed as one array, these three lines would make three values, the last a record; each is broken alone."""
    user = new_user(engine)
    borrowing = ["1],[2", '{"type": "STEPS", "sourceDevice": "x', 'y", "value": 5}']
    path = tmp_path / "borrowing.ndjson"
    path.write_text("\n".join([_line(100), *borrowing, _line(200)]) + "\n")

    report = import_file(engine, path, user)

    assert (report.counts.read, report.counts.landed, report.counts.rejected) == (5, 2, 3)
    assert _quarantine(engine, report.batch_id) == [
        ("malformed JSON line", {"lineNumber": number, "line": line}) for number, line in enumerate(borrowing, 2)
    ]
