"""Reader of the seed's ``HealthSample`` shape as NDJSON (one JSON object per line) or CSV, in bounded chunks.

Fields: ``type, value, unit, startDate, endDate, sourceDevice`` and optionally ``sourceApp, metadata, userId,
stage, timezone, deviceClass, id``; snake_case spellings are accepted too. Lines that are not JSON objects (or CSV
rows with the wrong number of fields) are not dropped: they come back as rejects with the line as payload.

Device class (`pipeline.devices`): ``deviceClass`` when given (a class, or one of the seed's words below; another
word is a reject); else the seed's ``sourceDevice`` words name it (``apple_watch`` watch, ``iphone`` phone, ``ipad``
tablet, ``third_party_wearable`` wearable, ``third_party_scale`` scale_or_app, ``manual_entry`` manual); any other
``sourceDevice`` is classified from its name ("Anna's Apple Watch", "Pixel 8", "Fitbit Charge").

Time zone (`pipeline.ingest.landing`): instants must carry an offset. ``timezone`` (IANA name or ``+HH:MM``) wins;
else a non-zero offset the sample is written with is its zone (``2026-03-11T03:30:00+02:00`` counts at 03:30 local
time, for 2026-03-11); ``Z`` and ``+00:00`` say nothing of a zone, so the user's time zone history, then home zone,
decide its local day.

Two apps (``sourceApp``) writing the same reading from the same ``sourceDevice`` land as two raw rows; the pipeline
keeps one and records the other as matched to it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

FIELD_NAMES = {
    "type": "metric",
    "metric": "metric",
    "value": "value",
    "unit": "unit",
    "startDate": "start",
    "start_date": "start",
    "start": "start",
    "endDate": "end",
    "end_date": "end",
    "end": "end",
    "sourceDevice": "source_name",
    "source_device": "source_name",
    "sourceName": "source_name",
    "source_name": "source_name",
    "sourceApp": "source_app",
    "source_app": "source_app",
    "metadata": "metadata",
    "userId": "user_id",
    "user_id": "user_id",
    "stage": "stage",
    "timezone": "timezone",
    "timeZone": "timezone",
    "deviceClass": "device_class",
    "device_class": "device_class",
    "device": "device",
    "id": "external_id",
    "externalId": "external_id",
}


USER_FIELDS = tuple(name for name, column in FIELD_NAMES.items() if column == "user_id")


def csv_has_user_column(path: Path) -> bool:
    """Whether the CSV's header names a user column (rows without a user are still rejected one by one)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = next(csv.reader(handle), [])
    return any(name.strip() in USER_FIELDS for name in header)


def first_record_has_user(path: Path) -> bool:
    """Whether the first non-blank line of an NDJSON file is an object with a user id."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        line = next((line for line in handle if line.strip()), "")
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and any(record.get(name) not in (None, "") for name in USER_FIELDS)


@dataclass(frozen=True)
class GenericChunk:
    samples: pd.DataFrame  # incoming columns (landing.INCOMING_COLUMNS)
    malformed: pd.DataFrame  # user_id, reason, payload


def to_incoming(records: pd.DataFrame, default_user: str | None) -> pd.DataFrame:
    """Rename HealthSample fields to the landing's incoming columns; fill the user where the file has none."""
    renamed = records.rename(columns={k: v for k, v in FIELD_NAMES.items() if k in records.columns})
    renamed = renamed.loc[:, ~renamed.columns.duplicated()]
    if default_user is not None:
        users = renamed["user_id"] if "user_id" in renamed else pd.Series(None, index=renamed.index, dtype=object)
        renamed["user_id"] = users.where(users.notna() & (users.astype(str) != ""), default_user)
    metadata = renamed.get("metadata")
    if metadata is not None:
        renamed["user_entered"] = metadata.map(
            lambda m: isinstance(m, dict) and str(m.get("HKWasUserEntered", m.get("userEntered", ""))) in ("1", "True"),
            na_action="ignore",
        )
    return renamed


def _malformed(lines: list[str], reason: str, default_user: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [default_user] * len(lines),
            "reason": reason,
            "payload": [json.dumps({"line": line}, ensure_ascii=False) for line in lines],
        }
    )


def read_ndjson(
    path: Path,
    default_user: str | None,
    chunk_size: int = 15_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[GenericChunk]:
    total = path.stat().st_size
    done = 0
    with open(path, encoding="utf-8") as handle:
        while True:
            lines = [line for _, line in zip(range(chunk_size), handle, strict=False)]
            if not lines:
                return
            done += sum(len(line.encode()) for line in lines)
            text_lines = [line.strip() for line in lines if line.strip()]
            bad: list[str] = []
            try:
                records = pd.read_json(io.StringIO("\n".join(text_lines)), lines=True, dtype=False)
            except ValueError:
                # Isolate the broken lines; the rest of the chunk still lands.
                parsed: list[dict[str, object]] = []
                for line in text_lines:
                    try:
                        value = json.loads(line)
                    except json.JSONDecodeError:
                        value = None
                    if isinstance(value, dict):
                        parsed.append(value)
                    else:
                        bad.append(line)
                records = pd.DataFrame(parsed)
            if on_progress:
                on_progress(done, total)
            yield GenericChunk(to_incoming(records, default_user), _malformed(bad, "malformed JSON line", default_user))


def read_csv(
    path: Path,
    default_user: str | None,
    chunk_size: int = 15_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[GenericChunk]:
    bad_lines: list[list[str]] = []

    def keep_bad_line(fields: list[str]) -> None:
        bad_lines.append(fields)
        return None

    total = path.stat().st_size
    if total == 0:
        return  # no header, no rows
    with open(path, "rb") as handle:
        reader = pd.read_csv(
            handle,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            chunksize=chunk_size,
            engine="python",
            on_bad_lines=keep_bad_line,
            encoding="utf-8",
        )
        for records in reader:
            if "metadata" in records:
                records["metadata"] = records["metadata"].map(_json_or_text, na_action="ignore")
            if on_progress:
                on_progress(min(handle.tell(), total), total)
            malformed = _malformed([_csv_line(f) for f in bad_lines], "malformed CSV row", default_user)
            bad_lines.clear()
            yield GenericChunk(to_incoming(records, default_user), malformed)


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"text": text}


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue().rstrip("\r\n")
