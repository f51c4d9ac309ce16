"""Streaming reader of Apple Health exports (``export.xml`` or the iPhone's ``.zip``) with bounded memory.

How it reads, and why:
- The archive's XML is read in pieces of about 1 MiB, each cut just before a ``<Record`` so no element is split
  (``apple_archive``, which also leaves the export's broken internal DTD unread), and every piece is parsed with
  Arrow's vectorized string kernels (``apple_parse``) instead of a per-element callback parser.
- Memory holds one chunk of records (30,000 by default) and the piece being parsed, whatever the file size
  (real exports are several GB).
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
- Record types map to the catalogue's metrics here (``HK_TYPES``); other types are counted, not imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.apple_archive import AppleExportError, export_pieces, line_places, open_export
from pipeline.ingest.apple_parse import ParseState, ReadSummary, parse_piece
from pipeline.ingest.apple_structure import OPENED, OpenElement
from pipeline.ingest.landing import parse_apple_instants

__all__ = ["HK_TYPES", "SLEEP_VALUES", "AppleExportError", "ReadSummary", "read_export"]

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
    state = ParseState()
    pending: list[pa.Table] = []
    held = 0
    damage: tuple[int, str] | None = None
    with open_export(path) as (stream, total):
        for piece in export_pieces(stream, path):
            state.byte_at = piece.offset
            records = parse_piece(piece.text, state, summary)
            summary.bytes_read += piece.size
            state.byte_at += piece.size
            if on_progress:
                on_progress(min(summary.bytes_read, total), total)
            pending.append(records)
            held += len(records)
            if state.fault is not None:
                break
            if piece.damage is not None:
                damage = (piece.damage_at, piece.damage)
                break
            if held >= chunk_size:
                yield _to_incoming(pa.concat_tables(pending), user_id, summary), summary
                pending, held = [], 0
    last = _to_incoming(pa.concat_tables(pending), user_id, summary) if pending else pd.DataFrame()
    if state.fault is None and damage is None and summary.records == 0 and not summary.other_elements:
        raise AppleExportError(f"{path.name} holds no Apple Health records (is it an export.xml?)")
    yield last, summary
    if state.fault is not None:
        byte, fault = state.fault
        where, opened = _places(path, byte, fault.opened)
        what = fault.what.replace(OPENED, opened)
        raise AppleExportError(
            f"{path.name} is damaged at {where}: {what}; {_records_before(summary.records, 'it')}, nothing after it"
        )
    if damage is not None:
        where, _ = _places(path, damage[0], None)
        raise AppleExportError(
            f"{path.name} is damaged at {where}: {damage[1]}; {_records_before(summary.records, 'it')}, "
            "nothing after it"
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
    """ "line L (byte B)" of a fault and of the element it concerns."""
    where = line_places(path, [byte, opened.byte] if opened else [byte])
    return where[0], where[-1] if opened else ""
