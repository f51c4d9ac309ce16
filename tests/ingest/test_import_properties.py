"""Property tests of the file importers on generated files: valid records, broken lines, random bytes, values
PostgreSQL cannot store, truncation, other encodings, long fields. Whatever the file, an import ends with a report
(or, for a damaged Apple export, `IncompleteImportError`: exit 1), and read = landed + duplicates + rejected +
skipped holds and matches the rows the batch left in ``raw.samples`` and ``raw.quarantine``."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from pipeline.infra.database import psycopg_connection
from pipeline.ingest.importer import ImportReport, IncompleteImportError, import_file
from tests.support.helpers import APPLE_HEADER, apple_record, new_user

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

_TYPES = ("STEPS", "HEART_RATE", "WEIGHT", "SLEEP_ANALYSIS", "TEMPERATURE", "", "steps")
_INSTANTS = ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00", "yesterday", "0001-01-01")
_POISON = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "9" * 4000,
    '"a\\u0000b"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '{"k\\u0000": 1}',
    '"' + "x" * 100_000 + '"',
    "[" * 50 + "]" * 50,
    '{"HKWasUserEntered": 1}',
)
_FIELDS = ("value", "sourceDevice", "metadata", "startDate", "unit", "type", "timezone", "id")

records = st.fixed_dictionaries(
    {
        "type": st.sampled_from(_TYPES),
        "value": st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False), st.text()),
        "unit": st.sampled_from(("count", "bpm", "kg", "lb", "min", "", "parsec")),
        "startDate": st.sampled_from(_INSTANTS),
        "endDate": st.sampled_from(_INSTANTS),
        "sourceDevice": st.text(max_size=30),
    },
    optional={"metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3), "stage": st.text()},
)
poisoned = st.tuples(records, st.sampled_from(_FIELDS), st.sampled_from(_POISON)).map(
    lambda t: json.dumps(t[0])[:-1] + f', "{t[1]}": {t[2]}}}' if t[0] else "{}"
)
text_lines = st.one_of(
    records.map(json.dumps),
    poisoned,
    st.text(max_size=80),  # broken lines: any text
    records.map(lambda r: json.dumps(r, ensure_ascii=False)[: len(json.dumps(r)) // 2]),  # cut in the middle
)
raw_lines = st.one_of(text_lines.map(lambda line: line.encode("utf-8", "surrogatepass")), st.binary(max_size=120))


def _encode(lines: list[bytes], encoding: str, cut: float | None) -> bytes:
    data = b"\n".join(lines) + b"\n"
    if encoding != "utf-8":
        data = data.decode("utf-8", "replace").encode(encoding, "replace")
    return data[: int(len(data) * cut)] if cut is not None else data


def _import(engine: Engine, name: str, data: bytes) -> ImportReport:
    user = new_user(engine)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return import_file(engine, path, user, chunk_size=7)
        except IncompleteImportError as fault:
            return fault.report


def _assert_balanced(engine: Engine, report: ImportReport) -> None:
    c = report.counts
    assert c.read == c.landed + c.duplicates + c.rejected + c.skipped
    with psycopg_connection(engine) as conn:
        row = conn.execute(
            """SELECT (SELECT count(*) FROM raw.samples WHERE batch_id = %(b)s),
                      (SELECT count(*) FROM raw.quarantine WHERE batch_id = %(b)s),
                      read_count, landed_count, duplicate_count, rejected_count, skipped_count, status
               FROM app.ingest_batches WHERE batch_id = %(b)s""",
            {"b": report.batch_id},
        ).fetchone()
    assert row is not None
    assert row[:2] == (c.landed, c.rejected)
    assert row[2:7] == (c.read, c.landed, c.duplicates, c.rejected, c.skipped)
    assert row[7] in ("done", "failed")


@PROPERTY_SETTINGS
@given(
    lines=st.lists(raw_lines, max_size=25),
    encoding=st.sampled_from(("utf-8", "utf-8", "utf-16", "latin-1")),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_any_ndjson_file_ends_in_a_balanced_report(
    engine: Engine, lines: list[bytes], encoding: str, cut: float | None
) -> None:
    _assert_balanced(engine, _import(engine, "samples.ndjson", _encode(lines, encoding, cut)))


@PROPERTY_SETTINGS
@given(lines=st.lists(text_lines, min_size=1, max_size=25))
def test_every_nonblank_json_text_line_is_read_once(engine: Engine, lines: list[str]) -> None:
    """Lines that are UTF-8 without NUL bytes: each non-blank one is one record read (landed or rejected)."""
    one_per_line = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    data = "\n".join(one_per_line).encode("utf-8", "surrogatepass") + b"\n"
    report = _import(engine, "samples.ndjson", data)
    _assert_balanced(engine, report)
    decodable = [line for line in data.split(b"\n")[:-1]]
    expected = 0
    for line in decodable:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            expected += 1
            continue
        expected += 1 if (text.strip() or "\x00" in text) else 0
    assert report.counts.read == expected


_CSV_HEADERS = (
    "type,value,unit,startDate,endDate,sourceDevice",
    "type,value,unit,startDate,endDate,sourceDevice,metadata,userId",
    "a,b",
    "",
)
csv_cells = st.one_of(
    st.sampled_from(("STEPS", "100", "count", "2024-01-01T10:00:00Z", "NaN", "1e400", '{"a": NaN}', '{"k": 1}')),
    st.text(max_size=20),
)
csv_rows = st.one_of(
    st.lists(csv_cells, min_size=0, max_size=9).map(
        lambda cells: ",".join('"' + c.replace('"', '""') + '"' if i % 2 else c for i, c in enumerate(cells))
    ),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)


@PROPERTY_SETTINGS
@example(header=_CSV_HEADERS[0], rows=["STEPS,1\rx,count"], raw=[], encoding="utf-8", cut=None)  # a bare CR
@given(
    header=st.sampled_from(_CSV_HEADERS),
    rows=st.lists(csv_rows, max_size=20),
    raw=st.lists(st.binary(max_size=60), max_size=3),
    encoding=st.sampled_from(("utf-8", "utf-8", "utf-16", "latin-1")),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_any_csv_file_ends_in_a_balanced_report(
    engine: Engine, header: str, rows: list[str], raw: list[bytes], encoding: str, cut: float | None
) -> None:
    lines = [header.encode(), *(row.encode("utf-8", "surrogatepass") for row in rows), *raw]
    _assert_balanced(engine, _import(engine, "samples.csv", _encode(lines, encoding, cut)))


_HK = (
    "HKQuantityTypeIdentifierStepCount",
    "HKQuantityTypeIdentifierHeartRate",
    "HKCategoryTypeIdentifierSleepAnalysis",
    "HKQuantityTypeIdentifierHeight",
)
_APPLE_INSTANTS = ("2024-03-01 10:00:00 +0000", "2024-03-01 10:05:00 +0100", "2024-13-01 10:00:00 +0000", "")
_ATTRIBUTE_TEXT = st.one_of(
    st.sampled_from(("100", "NaN", "inf", "1e400", "&#0;", "&#1;", "a\x01b", "&amp;", "&#xD800;", "\x7f", "\\")),
    st.text(alphabet=st.characters(blacklist_characters='"<&', blacklist_categories=("Cs",)), max_size=12),
)
_MOSTLY_VALID_INSTANT = st.one_of(st.just(_APPLE_INSTANTS[0]), st.sampled_from(_APPLE_INSTANTS))
apple_records = st.builds(
    lambda hk, value, start, end, source, meta: apple_record(hk, value, "count", start, end, source, meta),
    st.sampled_from(_HK),
    st.one_of(st.just("100"), _ATTRIBUTE_TEXT),
    _MOSTLY_VALID_INSTANT,
    _MOSTLY_VALID_INSTANT,
    _ATTRIBUTE_TEXT,
    st.dictionaries(st.sampled_from(("HKTimeZone", "k", "HKWasUserEntered")), _ATTRIBUTE_TEXT, max_size=3),
)
apple_fragments = st.one_of(
    apple_records,
    apple_records,
    st.sampled_from(("</Record>", "<Correlation>", "</Correlation>", "<Workout/>", "<!-- c -->", "<Record ")),
    st.text(max_size=40),
)


_STEPS = "HKQuantityTypeIdentifierStepCount"
_CONTROL_IN_METADATA = apple_record(_STEPS, "7", "count", *_APPLE_INSTANTS[:1] * 2, "Watch", {"k": "a\x01b\x1f"})


@PROPERTY_SETTINGS
@example(parts=[_CONTROL_IN_METADATA], raw=None, close=True, zipped=False, cut=None)
@given(
    parts=st.lists(apple_fragments, max_size=15),
    raw=st.one_of(st.none(), st.binary(max_size=40)),
    close=st.booleans(),
    zipped=st.booleans(),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_any_apple_export_ends_in_a_balanced_report_or_a_damaged_export(
    engine: Engine, parts: list[str], raw: bytes | None, close: bool, zipped: bool, cut: float | None
) -> None:
    document = (APPLE_HEADER + "".join(parts)).encode("utf-8", "surrogatepass") + (raw or b"")
    document += b"</HealthData>\n" if close else b""
    document = document[: int(len(document) * cut)] if cut is not None else document
    if zipped:
        with tempfile.TemporaryDirectory() as folder:
            archive = Path(folder) / "export.zip"
            with zipfile.ZipFile(archive, "w") as out:
                out.writestr("apple_health_export/export.xml", document)
            data, name = archive.read_bytes(), "export.zip"
    else:
        data, name = document, "export.xml"
    _assert_balanced(engine, _import(engine, name, data))
