"""Streaming reader of Apple Health exports (``export.xml`` or the iPhone's ``.zip``) with bounded memory.

- The file is fed to expat in 1 MiB pieces; records accumulate column-wise and leave as a DataFrame every
  ``chunk_size`` records, so memory does not grow with the file (real exports are several GB).
- The internal DTD is cut out before parsing: iOS 16 writes a broken one (``VisionPrescription`` never closed) that
  makes a strict parser fail, and it declares nothing we need.
- ``<Record>`` children of ``<Correlation>`` repeat top-level records and are ignored.
- ``HKTimeZone`` metadata is the sample's own zone. The ``+HHMM`` offsets in the dates are the exporting phone's at
  export time: they give the right instant, not the sample's wall clock, so they are never used as its zone.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from xml.parsers import expat

import numpy as np
import pandas as pd

from pipeline.ingest.landing import APPLE_DATE_FORMAT

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
_READ_SIZE = 1 << 20
_RECORD_FIELDS = ("type", "value", "unit", "startDate", "endDate", "sourceName", "sourceVersion", "device",
                  "creationDate")  # fmt: skip


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


def _without_doctype(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream's bytes with any ``<!DOCTYPE ...>`` block (and its internal subset) removed."""
    head = b""
    while True:
        piece = stream.read(_READ_SIZE)
        head += piece
        root_at = head.find(b"<HealthData")
        if root_at >= 0 or not piece:
            break
    if root_at >= 0:
        doctype_at = head.find(b"<!DOCTYPE", 0, root_at)
        if doctype_at >= 0:
            head = head[:doctype_at] + head[root_at:]
    yield head
    while piece := stream.read(_READ_SIZE):
        yield piece


class _Collector:
    """expat handlers that collect records column-wise."""

    def __init__(self, summary: ReadSummary) -> None:
        self.summary = summary
        self.in_record = False
        self.depth_in_correlation = 0
        self.current_meta: dict[str, str] | None = None
        self._reset_columns()

    def _reset_columns(self) -> None:
        self.columns: dict[str, list[str | None]] = {name: [] for name in _RECORD_FIELDS}
        self.timezones: list[str | None] = []
        self.user_entered: list[bool] = []
        self.metadata: list[dict[str, str] | None] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "Record":
            if self.depth_in_correlation:
                return
            self.summary.records += 1
            hk_type = attrs.get("type", "")
            if hk_type not in HK_TYPES:
                self.summary.skipped_types[hk_type] += 1
                return
            self.in_record = True
            self.current_meta = None
            for key, column in self.columns.items():
                column.append(attrs.get(key))
        elif name == "MetadataEntry":
            if self.in_record:
                if self.current_meta is None:
                    self.current_meta = {}
                self.current_meta[attrs.get("key", "")] = attrs.get("value", "")
        elif name == "Correlation":
            self.depth_in_correlation += 1
            self.summary.other_elements[name] += 1
        elif name not in ("HealthData", "ExportDate", "Me", "Location", "WorkoutEvent", "WorkoutRoute",
                          "WorkoutStatistics", "FileReference", "InstantaneousBeatsPerMinute",
                          "HeartRateVariabilityMetadataList"):  # fmt: skip
            self.summary.other_elements[name] += 1

    def end(self, name: str) -> None:
        if name == "Record" and self.in_record:
            meta = self.current_meta
            self.metadata.append(meta)
            self.timezones.append(meta.get("HKTimeZone") if meta else None)
            self.user_entered.append(bool(meta) and meta.get("HKWasUserEntered") == "1")  # type: ignore[union-attr]
            self.in_record = False
        elif name == "Correlation":
            self.depth_in_correlation -= 1

    def __len__(self) -> int:
        return len(self.timezones)

    def drain(self, user_id: str) -> pd.DataFrame:
        """The collected records as an incoming-samples frame (see landing.INCOMING_COLUMNS); resets."""
        raw = pd.DataFrame(self.columns, dtype="string")
        metric = raw["type"].map(HK_TYPES)
        is_sleep = metric == "SLEEP_ANALYSIS"
        value = raw["value"]
        unit = raw["unit"]
        stage = pd.Series(None, index=raw.index, dtype=object)
        if is_sleep.any():
            # A sleep record's value is its stage; the quantity is its duration in minutes.
            start = pd.to_datetime(raw.loc[is_sleep, "startDate"], format=APPLE_DATE_FORMAT, utc=True, errors="coerce")
            end = pd.to_datetime(raw.loc[is_sleep, "endDate"], format=APPLE_DATE_FORMAT, utc=True, errors="coerce")
            minutes = (end - start).dt.total_seconds() / 60.0
            stage = stage.where(~is_sleep, raw["value"].map(SLEEP_VALUES).fillna(raw["value"]))
            value = value.astype(object).where(~is_sleep, minutes)
            unit = unit.where(~is_sleep, "min")
        source_app = raw["sourceName"].where(
            raw["sourceVersion"].isna(), raw["sourceName"] + " " + raw["sourceVersion"]
        )
        frame = pd.DataFrame(
            {
                "user_id": user_id,
                "metric": metric,
                "value": value,
                "unit": unit,
                "stage": stage,
                "start": raw["startDate"],
                "end": raw["endDate"],
                "timezone": self.timezones,
                "source_name": raw["sourceName"],
                "device_class": None,
                "source_app": source_app,
                "device": raw["device"],
                "external_id": raw["creationDate"],
                "metadata": self.metadata,
                "user_entered": np.array(self.user_entered, dtype=bool),
            }
        )
        self._reset_columns()
        return frame


def read_export(
    path: Path,
    user_id: str,
    chunk_size: int = 100_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[pd.DataFrame, ReadSummary]]:
    """Yield (chunk of incoming samples, running summary). ``on_progress(bytes_read, total_bytes)``."""
    summary = ReadSummary()
    collector = _Collector(summary)
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    with open_export(path) as (stream, total):
        for piece in _without_doctype(stream):
            try:
                parser.Parse(piece, False)
            except expat.ExpatError as exc:
                raise AppleExportError(f"{path.name} is not well-formed XML: {exc}") from exc
            summary.bytes_read += len(piece)
            if on_progress:
                on_progress(summary.bytes_read, total)
            if len(collector) >= chunk_size:
                yield collector.drain(user_id), summary
        try:
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise AppleExportError(f"{path.name} ends early or is not well-formed: {exc}") from exc
    if summary.records == 0 and not summary.other_elements:
        raise AppleExportError(f"{path.name} holds no Apple Health records (is it an export.xml?)")
    yield collector.drain(user_id), summary
