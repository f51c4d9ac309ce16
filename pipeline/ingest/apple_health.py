"""Streaming reader of Apple Health exports (``export.xml`` or the iPhone's ``.zip``) with bounded memory.

How it reads, and why:
- The file is read in 8 MiB pieces, each cut just before a ``<Record`` so no element is split, and every piece is
  parsed with Arrow's vectorized string kernels instead of a per-element callback parser: in well-formed XML a
  ``<`` always opens a tag, so splitting a piece on ``<`` yields one tag per row; attributes are extracted with one
  regular expression per attribute over all rows at once. A callback parser (expat) spends ~8 us per record
  building Python dicts; this costs ~2 us, which is what makes 100,000+ records/s possible.
- Memory holds one piece and its records, whatever the file size (real exports are several GB).
- The internal DTD is never read: iOS 16 writes a broken one (``VisionPrescription`` never closed) that makes a
  strict parser fail, and it declares nothing we need.
- A damaged record does not stop the import: whatever cannot be read from it (a date, a value) makes it a reject
  with its reason, kept in quarantine; a file that ends early is reported after everything before the break landed.
- ``<Record>`` children of ``<Correlation>`` repeat top-level records and are ignored.
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
_READ_SIZE = 1 << 20  # with 15,000-record chunks this bounds the working set (benchmarks/import_apple_export.py)
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


def _without_doctype(stream: IO[bytes], path: Path) -> Iterator[bytes]:
    """The stream's bytes with any ``<!DOCTYPE ...>`` block (and its internal subset) removed."""
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
    raw ``"``), so one split plus an equality mask per name replaces a regular expression per name.
    """
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
    result = {}
    for number, name in enumerate(names):
        at = key_at[which == number]
        scatter = np.full(len(tags), -1, dtype=np.int64)
        scatter[owner[at]] = np.arange(at.size)
        values = _unescape(pc.take(flat, pa.array(at + 1)))
        result[name] = pc.take(values, pa.array(scatter, mask=scatter < 0))
    return result


def _json_string(values: pa.Array) -> pa.Array:
    for char, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        values = pc.replace_substring(values, char, escaped)
    return pc.binary_join_element_wise('"', values, '"', "")


@dataclass
class _ParseState:
    correlation_depth: int = 0
    closed: bool = False  # saw </HealthData>


def _parse_piece(text: str, state: _ParseState, summary: ReadSummary) -> pd.DataFrame:
    """Records of one piece as raw attribute columns plus metadata (JSON text), time zone and user-entered flag."""
    tags = pa.array(text.split("<"), pa.string())  # Arrow's split_pattern is far slower on one long string
    names = pc.struct_field(pc.extract_regex(tags, r"^(?P<n>/?[A-Za-z]+)"), "n")
    names_np = names.to_numpy(zero_copy_only=False)
    self_closing = pc.match_substring_regex(tags, r"/>\s*$").to_numpy(zero_copy_only=False)
    is_record = names_np == "Record"
    # Correlation nesting, carried across pieces
    delta = (names_np == "Correlation") & ~self_closing
    delta = delta.astype(np.int64) - (names_np == "/Correlation")
    depth_after = state.correlation_depth + np.cumsum(delta)
    depth_at = depth_after - delta
    state.correlation_depth = int(depth_after[-1]) if depth_after.size else state.correlation_depth
    state.closed = state.closed or bool((names_np == "/HealthData").any())
    # which record a MetadataEntry belongs to: the open record before it, if any
    record_ordinal = np.cumsum(is_record) - 1
    opens = pd.Series(np.nan, index=range(len(names_np)))
    opens[is_record] = np.where(self_closing[is_record], 0.0, 1.0)
    opens[(names_np != "Record") & (names_np != "MetadataEntry")] = 0.0
    inside = opens.ffill().fillna(0.0).to_numpy() == 1.0
    for tag_name, count in pd.Series(names_np[~is_record]).value_counts().items():
        if isinstance(tag_name, str) and not tag_name.startswith("/") and tag_name not in _QUIET_TAGS:
            summary.other_elements[tag_name] += int(count)

    top_level = is_record & (depth_at == 0)
    summary.records += int(top_level.sum())
    record_tags = pc.filter(tags, pa.array(top_level))
    columns = _attributes(record_tags, _RECORD_FIELDS)
    frame = pd.DataFrame(
        {name: pd.Series(values, dtype=pd.ArrowDtype(pa.string())) for name, values in columns.items()}
    ).astype("string")
    # metadata: key/value pairs of entries inside a top-level record, as one JSON object per record
    entry_mask = (names_np == "MetadataEntry") & inside & (depth_at == 0)
    frame["metadata"] = None
    frame["timezone"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["user_entered"] = False
    if entry_mask.any():
        entries = pc.filter(tags, pa.array(entry_mask))
        pairs = _attributes(entries, ("key", "value"))
        keys, values = pairs["key"], pairs["value"]
        owners = record_ordinal[entry_mask]
        # owners are ordinals among all records of the piece; map to positions among top-level records
        position = np.cumsum(top_level) - 1
        owner_rows = position[np.flatnonzero(is_record)[owners]]
        fragments = pc.binary_join_element_wise(_json_string(keys), _json_string(values), ": ")
        grouped = pa.table({"row": owner_rows, "fragment": fragments}).group_by("row").aggregate([("fragment", "list")])
        objects = pc.binary_join_element_wise("{", pc.binary_join(grouped["fragment_list"], ", "), "}", "")
        rows = grouped["row"].to_numpy()
        frame.loc[rows, "metadata"] = objects.to_numpy(zero_copy_only=False)
        entry_frame = pd.DataFrame({"row": owner_rows, "key": keys.to_pylist(), "value": values.to_pylist()})
        zones = entry_frame[entry_frame["key"] == "HKTimeZone"].drop_duplicates("row", keep="last")
        frame.loc[zones["row"].to_numpy(), "timezone"] = zones["value"].to_numpy()
        typed = entry_frame[(entry_frame["key"] == "HKWasUserEntered") & (entry_frame["value"] == "1")]
        frame.loc[typed["row"].to_numpy(), "user_entered"] = True
    return frame


def _pieces(stream: IO[bytes], path: Path) -> Iterator[tuple[str, int]]:
    """(decoded text, bytes consumed) pieces of the export body, each cut just before a ``<Record`` (or at least a
    ``<``) so that no element is split across pieces. ``<`` is ASCII, so a cut never splits a UTF-8 character."""
    buffer = b""
    for raw in _without_doctype(stream, path):
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


def _to_incoming(raw: pd.DataFrame, user_id: str, summary: ReadSummary) -> pd.DataFrame:
    """Catalogue records as an incoming-samples frame (landing.INCOMING_COLUMNS); other types are counted."""
    metric = raw["type"].map(HK_TYPES)
    keep = metric.notna() | raw["type"].isna()  # a record without a type is a reject, not a skipped type
    for hk_type, count in raw.loc[~keep, "type"].value_counts().items():
        summary.skipped_types[str(hk_type)] += int(count)
    raw, metric = raw[keep], metric[keep]
    is_sleep = metric == "SLEEP_ANALYSIS"
    value = raw["value"]
    unit = raw["unit"]
    stage = pd.Series(pd.NA, index=raw.index, dtype="string")
    if is_sleep.any():
        # A sleep record's value is its stage; the quantity is its duration in minutes.
        minutes = (
            parse_apple_instants(raw.loc[is_sleep, "endDate"]) - parse_apple_instants(raw.loc[is_sleep, "startDate"])
        ).dt.total_seconds() / 60.0
        stage = stage.where(~is_sleep, raw["value"].map(SLEEP_VALUES).fillna(raw["value"]))
        value = value.where(~is_sleep, minutes.astype("string"))
        unit = unit.where(~is_sleep, "min")
    versioned = raw["sourceName"] + " " + raw["sourceVersion"]
    return pd.DataFrame(
        {
            "user_id": user_id,
            "metric": metric,
            "value": value,
            "unit": unit,
            "stage": stage,
            "start": raw["startDate"],
            "end": raw["endDate"],
            "timezone": raw["timezone"],
            "source_name": raw["sourceName"],
            "device_class": None,
            "source_app": versioned.fillna(raw["sourceName"]),
            "device": raw["device"],
            "external_id": raw["creationDate"],
            "metadata": raw["metadata"],
            "user_entered": raw["user_entered"].astype(bool),
        }
    ).reset_index(drop=True)


def read_export(
    path: Path,
    user_id: str,
    chunk_size: int = 15_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, ReadSummary]]:
    """Yield (chunk of incoming samples, running summary). ``on_progress(bytes_read, total_bytes)``.

    ``chunk_size`` bounds the records held at once (a piece may add up to one piece's worth more)."""
    summary = ReadSummary()
    state = _ParseState()
    pending: list[pd.DataFrame] = []
    held = 0
    with open_export(path) as (stream, total):
        for text, consumed in _pieces(stream, path):
            records = _parse_piece(text, state, summary)
            summary.bytes_read += consumed
            if on_progress:
                on_progress(min(summary.bytes_read, total), total)
            pending.append(records)
            held += len(records)
            if held >= chunk_size:
                yield _to_incoming(pd.concat(pending, ignore_index=True), user_id, summary), summary
                pending, held = [], 0
    last = _to_incoming(pd.concat(pending, ignore_index=True), user_id, summary) if pending else pd.DataFrame()
    if summary.records == 0 and not summary.other_elements:
        raise AppleExportError(f"{path.name} holds no Apple Health records (is it an export.xml?)")
    yield last, summary
    if not state.closed:
        raise AppleExportError(
            f"{path.name} ends early (no </HealthData>): the file looks truncated; the {summary.records:,} records "
            "before the break were read"
        )
