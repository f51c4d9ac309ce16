"""Writing synthetic samples as an Apple Health ``export.xml`` (for importer benchmarks and demos).

Dates are written the way iPhones do, with the phone's offset at export time for every record; sleep records carry
``HKTimeZone``. The XML is built with vectorized string operations, a bounded chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ingest.apple_health import HK_TYPES, SLEEP_VALUES

_HK_BY_METRIC = {metric: hk for hk, metric in HK_TYPES.items()}
_SLEEP_BY_STAGE = {stage: value for value, stage in reversed(SLEEP_VALUES.items())}
HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
]>
<HealthData locale="en_GB">
 <ExportDate value="2026-06-01 08:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1980-01-01" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet"/>
"""  # noqa: E501


def _apple_dates(instants: pd.Series, offset_hours: int = 1) -> pd.Series:
    shifted = (instants.dt.tz_convert(None) + pd.Timedelta(hours=offset_hours)).to_numpy(dtype="datetime64[s]")
    text = np.datetime_as_string(shifted, unit="s")
    dates = pd.Series(np.char.replace(text, "T", " "), index=instants.index, dtype="string")
    return dates + f" +{offset_hours:02d}00"


def records_xml(samples: pd.DataFrame) -> str:
    """``<Record>`` lines for valid samples (rows that cannot be expressed in Apple's format are skipped)."""
    frame = samples[samples["metric"].isin(list(_HK_BY_METRIC)) & samples["start"].notna()]
    frame = frame[pd.to_numeric(frame["value"], errors="coerce").notna()]
    is_sleep = frame["metric"] == "SLEEP_ANALYSIS"
    value = frame["value"].astype(str).where(~is_sleep, frame["stage"].map(_SLEEP_BY_STAGE))
    unit = (' unit="' + frame["unit"].str.replace("<", "&lt;").str.replace(">", "&gt;") + '"').where(~is_sleep, "")
    start, end = _apple_dates(frame["start"]), _apple_dates(frame["end"])
    zone = frame["timezone"].fillna("Europe/London")
    meta = ('><MetadataEntry key="HKTimeZone" value="' + zone + '"/></Record>').where(is_sleep, "/>")
    lines = (
        ' <Record type="'
        + frame["metric"].map(_HK_BY_METRIC)
        + '" sourceName="'
        + frame["source_name"]
        + '" sourceVersion="17.4"'
        + unit
        + ' creationDate="'
        + end
        + '" startDate="'
        + start
        + '" endDate="'
        + end
        + '" value="'
        + value
        + '"'
        + meta
    )
    return "\n".join(lines.tolist()) + "\n"


def write_export(path: Path, samples: pd.DataFrame, chunk_rows: int = 200_000) -> int:
    """Write an export.xml of ``samples``; returns the number of records written."""
    return write_export_chunks(path, [samples], chunk_rows)


def write_export_chunks(path: Path, chunks: Iterable[pd.DataFrame], chunk_rows: int = 200_000) -> int:
    """Write an export.xml of the samples of every chunk (one chunk in memory at a time, its XML ``chunk_rows``
    records at a time); returns the number of records written."""
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for samples in chunks:
            for start in range(0, len(samples), chunk_rows):
                text = records_xml(samples.iloc[start : start + chunk_rows])
                written += text.count("<Record ")
                handle.write(text)
        handle.write("</HealthData>\n")
    return written
