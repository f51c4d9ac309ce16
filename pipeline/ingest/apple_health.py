"""Streaming reader of Apple Health exports (``export.xml`` or the iPhone's ``.zip``) with bounded memory.

How it reads, and why:
- The file is read in 1 MiB pieces, each cut just before a ``<Record`` so no element is split, and every piece is
  parsed with Arrow's vectorized string kernels instead of a per-element callback parser: in well-formed XML a
  ``<`` always opens a tag, so splitting a piece on ``<`` yields one tag per row; tags are told apart by prefix
  tests, and attributes come from one split of the tags on ``"`` and one lookup of every attribute name. A callback
  parser (expat) spends ~8 us per record building Python dicts; this costs ~2.3 us (~3 us with metadata on every
  other record), which is what makes 100,000+ records/s possible.
- Memory holds one chunk of records (30,000 by default) and the piece being parsed, whatever the file size
  (real exports are several GB).
- The internal DTD is never read: iOS 16 writes a broken one (``VisionPrescription`` never closed) that makes a
  strict parser fail, and it declares nothing we need.
- A damaged record does not stop the import: whatever cannot be read from it (a date, a value) makes it a reject
  with its reason, kept in quarantine; a file that ends early is reported after everything before the break landed.
- A damaged structure does stop it (`apple_structure` follows the nesting of every tag, vectorized): at the first
  stray or mismatched closing tag, record inside a record, or element outside ``<HealthData>``, what came before
  the fault is read and nothing after it, and the error says where (line and byte) and what. Past such a fault
  nothing tells a top-level record from a correlation's child, so reading on would count records wrongly.
- Only records directly inside ``<HealthData>`` are read: ``<Record>`` children of ``<Correlation>`` repeat
  top-level records and are ignored.
- ``HKTimeZone`` metadata is the sample's own zone. The ``+HHMM`` offsets in the dates are the exporting phone's at
  export time: they give the right instant, not the sample's wall clock, so they are never used as its zone.
"""

from __future__ import annotations

import html
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.apple_structure import (
    ENTRY,
    OPENED,
    RECORD,
    Fault,
    Nesting,
    OpenElement,
    follow,
    line_numbers,
    locator,
)
from pipeline.ingest.landing import parse_apple_instants

HK_TYPES: dict[str, str] = {
    "HKQuantityTypeIdentifierStepCount": "STEPS",
    "HKQuantityTypeIdentifierDistanceWalkingRunning": "DISTANCE",
    "HKQuantityTypeIdentifierActiveEnergyBurned": "ACTIVE_ENERGY",
    "HKCategoryTypeIdentifierSleepAnalysis": "SLEEP_ANALYSIS",
    "HKQuantityTypeIdentifierHeartRate": "HEART_RATE",
    "HKQuantityTypeIdentifierRestingHeartRate": "RESTING_HEART_RATE",
    "HKQuantityTypeIdentifierOxygenSaturation": "OXYGEN_SATURATION",
    "HKQuantityTypeIdentifierBloodGlucose": "BLOOD_GLUCOSE",
    "HKQuantityTypeIdentifierBodyMass": "WEIGHT",
    "HKQuantityTypeIdentifierBodyFatPercentage": "BODY_FAT",
}
SLEEP_VALUES: dict[str, str] = {
    "HKCategoryValueSleepAnalysisInBed": "in_bed",
    "HKCategoryValueSleepAnalysisAsleep": "asleep",
    "HKCategoryValueSleepAnalysisAsleepUnspecified": "asleep",
    "HKCategoryValueSleepAnalysisAsleepCore": "core",
    "HKCategoryValueSleepAnalysisAsleepDeep": "deep",
    "HKCategoryValueSleepAnalysisAsleepREM": "rem",
    "HKCategoryValueSleepAnalysisAwake": "awake",
}
XML_NAMES = ("export.xml", "exportar.xml", "exporter.xml", "exportieren.xml")
_READ_SIZE = 1 << 20  # with 30,000-record chunks this bounds the working set (benchmarks/import_apple_export.py)
_RECORD_FIELDS = (
    "type",
    "value",
    "unit",
    "startDate",
    "endDate",
    "sourceName",
    "sourceVersion",
    "device",
    "creationDate",
)
# Elements that are structure or belong to records/workouts, not worth reporting as "not imported".
_QUIET_TAGS = frozenset(
    {
        "HealthData",
        "ExportDate",
        "Me",
        "Record",
        "MetadataEntry",
        "Location",
        "WorkoutEvent",
        "WorkoutStatistics",
        "FileReference",
        "InstantaneousBeatsPerMinute",
        "HeartRateVariabilityMetadataList",
        "WorkoutActivity",
        "WorkoutRoute",
    }
)
_NAMED_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&"))


class AppleExportError(ValueError):
    """The file is not an Apple Health export we can read; the message says why."""


@dataclass
class ReadSummary:
    records: int = 0  # top-level <Record> elements
    skipped_types: Counter[str] = field(default_factory=Counter)  # Record types outside the catalogue
    other_elements: Counter[str] = field(default_factory=Counter)  # Workout, ActivitySummary, ...
    bytes_read: int = 0


def _pick_xml_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    candidates = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and not info.filename.startswith("__MACOSX/")
        and not Path(info.filename).name.startswith("._")
        and info.filename.lower().endswith(".xml")
        and "export_cda" not in info.filename.lower()
    ]
    if not candidates:
        raise AppleExportError("the zip holds no export XML")
    named = [c for c in candidates if Path(c.filename).name.lower() in XML_NAMES]
    return (named or sorted(candidates, key=lambda c: -c.file_size))[0]


@contextmanager
def open_export(path: Path) -> Iterator[tuple[IO[bytes], int]]:
    """The export XML as a binary stream, from an ``.xml`` or a ``.zip``, with its uncompressed size."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            member = _pick_xml_member(archive)
            with archive.open(member) as stream:
                yield stream, member.file_size
    else:
        with open(path, "rb") as stream:
            yield stream, path.stat().st_size


def _without_doctype(stream: IO[bytes], path: Path, state: _ParseState) -> Iterator[bytes]:
    """The stream's bytes with any ``<!DOCTYPE ...>`` block (and its internal subset) removed; ``state`` counts
    the bytes removed, so that places in what is parsed are places in the file."""
    head = b""
    while True:
        piece = stream.read(_READ_SIZE)
        head += piece
        root_at = head.find(b"<HealthData")
        if root_at >= 0 or not piece or len(head) > 64 * _READ_SIZE:
            break
    if root_at < 0:
        raise AppleExportError(f"{path.name} is not an Apple Health export: it has no <HealthData> element")
    doctype_at = head.find(b"<!DOCTYPE", 0, root_at)
    if doctype_at >= 0:
        state.byte_at += root_at - doctype_at
        head = head[:doctype_at] + head[root_at:]
    yield head
    while piece := stream.read(_READ_SIZE):
        yield piece


def _unescape(values: pa.Array) -> pa.Array:
    """XML attribute values to text: the five named entities vectorized; numeric references (rare) one by one."""
    if not pc.any(pc.match_substring(values, "&")).as_py():
        return values
    for entity, char in _NAMED_ENTITIES:
        values = pc.replace_substring(values, entity, char)
    has_numeric = pc.match_substring(values, "&#")
    if pc.any(has_numeric).as_py():
        python = values.to_pylist()
        for i in np.flatnonzero(has_numeric.to_numpy(zero_copy_only=False)):
            python[i] = html.unescape(python[i])
        values = pa.array(python, pa.string())
    return values


def _attributes(tags: pa.Array, names: tuple[str, ...]) -> dict[str, pa.Array]:
    """The named attributes of each tag (null where absent), all at once.

    Splitting a tag on ``"`` puts ``name=`` parts at even positions and values at odd ones (a value cannot hold a
    raw ``"``), so one split plus one lookup of every key in the names replaces a regular expression per name. The
    values are gathered with one ``take`` into a names x tags block whose slices are the columns.
    """
    rows = len(tags)
    parts = pc.split_pattern(tags, '"')
    flat = pc.list_flatten(parts)
    owner = pc.list_parent_indices(parts).to_numpy()
    offsets = parts.offsets.to_numpy()
    position = np.arange(len(flat)) - offsets[owner]
    key_at = np.flatnonzero((position % 2 == 0) & (position + 1 < np.diff(offsets)[owner]))
    keys = pc.ascii_trim_whitespace(pc.take(flat, pa.array(key_at)))
    # The first key carries the element name ("Record type="); the usual spellings are in the value set, anything
    # else (odd whitespace) has the name stripped by a regular expression, on those few keys only.
    spellings = [f"{name}=" for name in names]
    value_set = spellings + [f"{element} {s}" for element in ("Record", "MetadataEntry") for s in spellings]
    found = pc.fill_null(pc.index_in(keys, value_set=pa.array(value_set)), -1).to_numpy().astype(np.int64)
    which = np.where(found >= 0, found % len(names), -1)
    odd_first = np.flatnonzero((which < 0) & (position[key_at] == 0))
    if odd_first.size:
        stripped = pc.replace_substring_regex(pc.take(keys, pa.array(odd_first)), r"^\S+\s+", "")
        found_first = pc.index_in(stripped, value_set=pa.array(spellings))
        which[odd_first] = pc.fill_null(found_first, -1).to_numpy()
    named = which >= 0
    gather = np.full(len(names) * rows, -1, dtype=np.int64)
    gather[which[named] * rows + owner[key_at[named]]] = key_at[named] + 1  # a repeated attribute: the last wins
    values = _unescape(pc.take(flat, pa.array(gather, mask=gather < 0)))
    return {name: values.slice(number * rows, rows) for number, name in enumerate(names)}


def _json_string(values: pa.Array) -> pa.Array:
    if pc.any(pc.match_substring_regex(values, '[\\\\"\\n\\r\\t]')).as_py():  # else nothing to escape
        for char, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
            values = pc.replace_substring(values, char, escaped)
    return pc.binary_join_element_wise('"', values, '"', "")


@dataclass
class _ParseState:
    nesting: Nesting = field(default_factory=Nesting)
    byte_at: int = 0  # where in the file the piece being parsed starts (the DTD the reader drops counted)
    fault: tuple[int, Fault] | None = None  # the first structural fault and its byte: reading stops there


_ELEMENT_NAME = r"^(?P<close>/?)(?P<name>[A-Za-z]+)"
_SELF_CLOSING = r"/>\s*$"
RAW_COLUMNS = (*_RECORD_FIELDS, "metadata", "timezone", "user_entered")


def _scatter(values: pa.Array, rows: np.ndarray, length: int) -> pa.Array:
    """``values[i]`` placed at row ``rows[i]`` of an array of ``length`` (null elsewhere; a repeated row: the last)."""
    gather = np.full(length, -1, dtype=np.int64)
    gather[rows] = np.arange(len(rows))
    return pc.take(values, pa.array(gather, mask=gather < 0))


def _parse_piece(text: str, state: _ParseState, summary: ReadSummary) -> pa.Table:
    """Records of one piece as raw attribute columns plus metadata (JSON text), time zone and user-entered flag.

    Tags are told apart with prefix tests (``Record ``, ``MetadataEntry ``); only the few other tags (closing tags,
    Correlation, Workout, ...) have their name read by a regular expression. The nesting of all of them is followed
    (`apple_structure`): only records directly inside ``<HealthData>`` are read, and nothing from the first
    structural fault on (``state.fault`` then says where and what)."""
    tags = pa.array(text.split("<"), pa.string())  # Arrow's split_pattern is far slower on one long string
    count = len(tags)
    is_record = pc.starts_with(tags, "Record ").to_numpy(zero_copy_only=False)
    is_entry = pc.starts_with(tags, "MetadataEntry ").to_numpy(zero_copy_only=False)
    others = np.flatnonzero(~(is_record | is_entry))
    other_tags = pc.take(tags, pa.array(others))
    parts = pc.extract_regex(other_tags, _ELEMENT_NAME)
    other_names = pc.struct_field(parts, "name")
    closing = pc.fill_null(pc.equal(pc.struct_field(parts, "close"), "/"), False).to_numpy(zero_copy_only=False)
    starting = pc.is_valid(other_names).to_numpy(zero_copy_only=False) & ~closing
    is_record[others] = starting & pc.fill_null(pc.equal(other_names, "Record"), False).to_numpy(zero_copy_only=False)
    is_entry[others] = starting & pc.fill_null(pc.equal(other_names, "MetadataEntry"), False).to_numpy(
        zero_copy_only=False
    )
    # Roles: +1 a start tag left open, -1 a closing tag, 0 anything else (self-closing, comment, text)
    roles = np.zeros(count, dtype=np.int8)
    roles[others] = np.where(
        closing, -1, starting & ~pc.match_substring_regex(other_tags, _SELF_CLOSING).to_numpy(zero_copy_only=False)
    )
    records_at, entries_at = np.flatnonzero(is_record), np.flatnonzero(is_entry)
    prefixed = np.flatnonzero(is_record | is_entry)
    roles[prefixed] = ~pc.match_substring_regex(pc.take(tags, pa.array(prefixed)), _SELF_CLOSING).to_numpy(
        zero_copy_only=False
    )
    open_record = is_record & (roles > 0)
    kinds = np.full(count, -1, dtype=np.int32)
    kinds[others] = state.nesting.kind_codes(other_names)
    kinds[records_at], kinds[entries_at] = RECORD, ENTRY
    locate = locator(text, tags, state.byte_at)
    structure = follow(state.nesting, roles, kinds, is_record, locate)
    read = count
    if structure.fault is not None:
        read = structure.fault.row
        state.fault = (locate(read), structure.fault)
    depth = structure.depth
    before = others < read
    tallies = pc.value_counts(pc.filter(other_names, pa.array(starting & before)))
    for name, number in zip(tallies.field("values").to_pylist(), tallies.field("counts").to_pylist(), strict=True):
        if isinstance(name, str) and name not in _QUIET_TAGS:
            summary.other_elements[name] += int(number)
    # A MetadataEntry belongs to the record before it when that record is open and nothing else came between.
    last_other = np.maximum.accumulate(np.where(is_entry, -1, np.arange(count))) if count else np.zeros(0, np.int64)
    top_level = is_record & (depth == 1)
    top_level[read:] = False
    summary.records += int(top_level.sum())
    record_rows = int(top_level.sum())
    row_of = np.cumsum(top_level) - 1
    columns = _attributes(pc.take(tags, pa.array(np.flatnonzero(top_level))), _RECORD_FIELDS)
    entry_at = np.flatnonzero(is_entry & (depth == 2) & (last_other >= 0) & open_record[np.maximum(last_other, 0)])
    entry_at = entry_at[top_level[last_other[entry_at]]]
    metadata = pa.nulls(record_rows, pa.string())
    timezone = pa.nulls(record_rows, pa.string())
    user_entered = np.zeros(record_rows, dtype=bool)
    if entry_at.size:
        pairs = _attributes(pc.take(tags, pa.array(entry_at)), ("key", "value"))
        keys, values = pairs["key"], pairs["value"]
        owner_rows = row_of[last_other[entry_at]]
        # key/value pairs of entries inside a top-level record, as one JSON object per record
        # (entries come in document order, so each record's entries are one run of owner_rows)
        fragments = pc.binary_join_element_wise(_json_string(keys), _json_string(values), ": ")
        starts = np.flatnonzero(np.diff(owner_rows, prepend=-1))
        runs = pa.ListArray.from_arrays(pa.array(np.append(starts, len(owner_rows)), pa.int32()), fragments)
        objects = pc.binary_join_element_wise("{", pc.binary_join(runs, ", "), "}", "")
        metadata = _scatter(objects, owner_rows[starts], record_rows)
        is_zone = pc.fill_null(pc.equal(keys, "HKTimeZone"), False)
        timezone = _scatter(pc.filter(values, is_zone), owner_rows[is_zone.to_numpy(zero_copy_only=False)], record_rows)
        typed = pc.fill_null(pc.and_(pc.equal(keys, "HKWasUserEntered"), pc.equal(values, "1")), False)
        user_entered[owner_rows[typed.to_numpy(zero_copy_only=False)]] = True
    columns |= {"metadata": metadata, "timezone": timezone, "user_entered": pa.array(user_entered)}
    return pa.table([columns[name] for name in RAW_COLUMNS], names=list(RAW_COLUMNS))


def _pieces(stream: IO[bytes], path: Path, state: _ParseState) -> Iterator[tuple[str, int]]:
    """(decoded text, bytes consumed) pieces of the export body, each cut just before a ``<Record`` (or at least a
    ``<``) so that no element is split across pieces. ``<`` is ASCII, so a cut never splits a UTF-8 character."""
    buffer = b""
    for raw in _without_doctype(stream, path, state):
        buffer += raw
        cut = buffer.rfind(b"<Record ")
        if cut <= 0:
            cut = buffer.rfind(b"<")
        if cut <= 0:
            continue
        piece, buffer = buffer[:cut], buffer[cut:]
        yield piece.decode("utf-8", errors="replace"), len(piece)
    if buffer:
        yield buffer.decode("utf-8", errors="replace"), len(buffer)


_HK_NAMES = pa.array(list(HK_TYPES))
_HK_METRICS = pa.array(list(HK_TYPES.values()))


def _to_incoming(raw: pa.Table, user_id: str, summary: ReadSummary) -> pd.DataFrame:
    """Catalogue records as an incoming-samples frame (landing.INCOMING_COLUMNS); other types are counted."""
    metric = pc.take(_HK_METRICS, pc.index_in(raw["type"], value_set=_HK_NAMES))
    keep = pc.or_(pc.is_valid(metric), pc.is_null(raw["type"]))  # no type: a reject, not a skipped type
    skipped = pc.value_counts(pc.filter(raw["type"], pc.invert(keep)))
    for hk_type, count in zip(skipped.field("values").to_pylist(), skipped.field("counts").to_pylist(), strict=True):
        summary.skipped_types[str(hk_type)] += int(count)
    raw = raw.filter(keep).append_column("metric", pc.filter(metric, keep))
    source_app = pc.coalesce(
        pc.binary_join_element_wise(raw["sourceName"], raw["sourceVersion"], " "), raw["sourceName"]
    )
    raw = raw.append_column("source_app", source_app)
    frame = raw.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)
    value, unit = frame["value"], frame["unit"]
    stage = pd.Series(pd.NA, index=frame.index, dtype="string")
    is_sleep = frame["metric"] == "SLEEP_ANALYSIS"
    if is_sleep.any():
        # A sleep record's value is its stage; the quantity is its duration in minutes.
        minutes = (
            parse_apple_instants(frame.loc[is_sleep, "endDate"])
            - parse_apple_instants(frame.loc[is_sleep, "startDate"])
        ).dt.total_seconds() / 60.0
        stage = stage.where(~is_sleep, value.map(SLEEP_VALUES).fillna(value))
        value = value.where(~is_sleep, minutes.astype("string"))
        unit = unit.where(~is_sleep, "min")
    return pd.DataFrame(
        {
            "user_id": user_id,
            "metric": frame["metric"],
            "value": value,
            "unit": unit,
            "stage": stage,
            "start": frame["startDate"],
            "end": frame["endDate"],
            "timezone": frame["timezone"],
            "source_name": frame["sourceName"],
            "device_class": None,
            "source_app": frame["source_app"],
            "device": frame["device"],
            "external_id": frame["creationDate"],
            "metadata": frame["metadata"],
            "user_entered": frame["user_entered"].astype(bool),
        }
    )


def read_export(
    path: Path,
    user_id: str,
    chunk_size: int = 30_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, ReadSummary]]:
    """Yield (chunk of incoming samples, running summary). ``on_progress(bytes_read, total_bytes)``.

    ``chunk_size`` bounds the records held at once (a piece may add up to one piece's worth more)."""
    summary = ReadSummary()
    state = _ParseState()
    pending: list[pa.Table] = []
    held = 0
    with open_export(path) as (stream, total):
        for text, consumed in _pieces(stream, path, state):
            records = _parse_piece(text, state, summary)
            summary.bytes_read += consumed
            state.byte_at += consumed
            if on_progress:
                on_progress(min(summary.bytes_read, total), total)
            pending.append(records)
            held += len(records)
            if state.fault is not None:
                break
            if held >= chunk_size:
                yield _to_incoming(pa.concat_tables(pending), user_id, summary), summary
                pending, held = [], 0
    last = _to_incoming(pa.concat_tables(pending), user_id, summary) if pending else pd.DataFrame()
    if state.fault is None and summary.records == 0 and not summary.other_elements:
        raise AppleExportError(f"{path.name} holds no Apple Health records (is it an export.xml?)")
    yield last, summary
    if state.fault is not None:
        byte, fault = state.fault
        where, opened = _places(path, byte, fault.opened)
        what = fault.what.replace(OPENED, opened)
        raise AppleExportError(
            f"{path.name} is damaged at {where}: {what}; {_records_before(summary.records, 'it')}, nothing after it"
        )
    if not state.nesting.root_closed:
        innermost = state.nesting.stack[-1] if state.nesting.stack else None
        where, opened = _places(path, state.byte_at, innermost)
        still_open = (
            f" with {state.nesting.describe(innermost).replace(OPENED, opened)} not closed" if innermost else ""
        )
        raise AppleExportError(
            f"{path.name} ends early at {where}{still_open}: the file looks truncated; "
            f"{_records_before(summary.records, 'the break')}"
        )


def _records_before(records: int, where: str) -> str:
    if records == 1:
        return f"the 1 record before {where} was read"
    return f"the {records:,} records before {where} were read"


def _places(path: Path, byte: int, opened: OpenElement | None) -> tuple[str, str]:
    """ "line L (byte B)" of a fault and of the element it concerns (lines counted by reading the file again)."""
    offsets = [byte, opened.byte] if opened else [byte]
    with open_export(path) as (stream, _):
        lines = line_numbers(stream, offsets, _READ_SIZE)
    where = [f"line {line} (byte {offset})" for line, offset in zip(lines, offsets, strict=True)]
    return where[0], where[-1] if opened else ""
