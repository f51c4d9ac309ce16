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
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.text_lines import MAX_LINE_BYTES, BadLine, read_lines

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
    with open(path, "rb") as handle:
        head = handle.readline(MAX_LINE_BYTES).decode("utf-8-sig", errors="replace")
    header = next(csv.reader([head]), [])
    return any(name.strip() in USER_FIELDS for name in header)


def first_record_has_user(path: Path) -> bool:
    """Whether the first non-blank line of an NDJSON file is an object with a user id (lines are read up to
    `MAX_LINE_BYTES` each, and only the first ``MAX_LINE_BYTES`` of blank lines)."""
    line = b""
    with open(path, "rb") as handle:
        seen = 0
        while seen <= MAX_LINE_BYTES:
            line = handle.readline(MAX_LINE_BYTES)
            seen += len(line)
            if not line or line.strip():
                break
    try:
        record = json.loads(line.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
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


def _malformed(lines: list[str], reason: str | list[str], default_user: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [default_user] * len(lines),
            "reason": reason,
            "payload": [json.dumps({"line": line}, ensure_ascii=False) for line in lines],
        }
    )


def _bad_lines(bad: list[BadLine], default_user: str | None) -> pd.DataFrame:
    """Rejects of lines no parser saw (not UTF-8, a NUL byte, too long), their bytes escaped (`escape_bytes`)."""
    return pd.DataFrame(
        {
            "user_id": [default_user] * len(bad),
            "reason": [line.reason for line in bad],
            "payload": [json.dumps(line.payload, ensure_ascii=False) for line in bad],
        }
    )


class _NotJSONNumberError(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, JSON and PostgreSQL do not."""


def _refuse_constant(name: str) -> object:
    raise _NotJSONNumberError(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # decode(): one value, nothing after it


# Text that may hide a value PostgreSQL refuses or a float cannot hold: a NUL or surrogate escape, a long exponent
# or a long run of digits. Lines where it appears (few) are checked value by value (`_unstorable`).
_SUSPECT = r"\\u(?:0000|[dD][89a-fA-F])|[eE][+-]?\d{3}|\d{300}"
_FLOAT_MAX = sys.float_info.max


def _fits_a_double(number: float) -> bool:
    return math.isfinite(number) if isinstance(number, float) else abs(number) <= _FLOAT_MAX


def _unstorable(value: object) -> str | None:
    """Why a parsed JSON value cannot be stored (a NUL or lone surrogate in text, a number no double holds)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "text holds a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text holds a lone surrogate (\\ud800-\\udfff)"
        elif isinstance(item, float | int) and not isinstance(item, bool) and not _fits_a_double(item):
            return "number out of range"
    return None


def _parse_lines(lines: list[str]) -> tuple[list[object], dict[int, str]]:
    """Each line's JSON value, and why lines could not be parsed or stored (line index -> reason).

    Each line is parsed on its own (C speed; joining the lines into one array would let a broken line borrow
    brackets or quotes from its neighbours); only lines where the text shows a possible NUL, surrogate or huge
    number (found with Arrow's regex kernel over the whole chunk) are checked value by value."""
    reasons: dict[int, str] = {}
    values: list[object] = []
    append = values.append
    decode = _DECODER.raw_decode  # lines come trimmed: a line is one value when it ends where the value ends
    for at, line in enumerate(lines):
        try:
            value, end = decode(line)
        except _NotJSONNumberError as constant:
            append(None)
            reasons[at] = f"{constant} is not a JSON number"
            continue
        except (ValueError, RecursionError):
            end = -1
        if end == len(line):
            append(value)
        else:
            append(None)
            reasons[at] = "malformed JSON line"
    if lines:
        suspect = pc.match_substring_regex(pa.array(lines, pa.string()), _SUSPECT)
        for row in np.flatnonzero(suspect.to_numpy(zero_copy_only=False)):
            if int(row) not in reasons and (why := _unstorable(values[int(row)])) is not None:
                reasons[int(row)] = why
    for not_object in np.flatnonzero(~np.fromiter((type(v) is dict for v in values), bool, len(values))):
        reasons.setdefault(int(not_object), "malformed JSON line")  # valid JSON, but not an object
    return values, reasons


def _scalars(records: pd.DataFrame) -> pd.DataFrame:
    """Objects or arrays in a field other than metadata become their JSON text (then rejected as that field's
    value, like any wrong text); metadata that is not an object is refused by `_bad_metadata`."""
    for column in records.columns:
        series = records[column]
        if column in ("metadata",) or series.dtype != object:
            continue
        if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty", "integer", "floating", "boolean"):
            continue
        records[column] = series.map(
            lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v, na_action="ignore"
        )
    return records


def _bad_metadata(records: pd.DataFrame) -> np.ndarray:
    """Rows whose ``metadata`` is present but not a JSON object."""
    if "metadata" not in records:
        return np.zeros(len(records), bool)
    meta = records["metadata"]
    is_object = meta.map(lambda m: isinstance(m, dict)).to_numpy(dtype=bool)
    bad: np.ndarray = meta.notna().to_numpy() & ~is_object
    return bad


def _ndjson_chunk(lines: list[str], numbers: np.ndarray, default_user: str | None) -> GenericChunk:
    values, reasons = _parse_lines(lines)
    keep = np.ones(len(lines), bool)
    if reasons:
        keep[list(reasons)] = False
    records = pd.DataFrame([v for v, k in zip(values, keep, strict=True) if k] if reasons else values)
    meta_bad = _bad_metadata(records)
    if meta_bad.any():
        kept_at = np.flatnonzero(keep)
        for at in kept_at[meta_bad]:
            reasons[int(at)] = "metadata is not a JSON object"
        records = records[~meta_bad].reset_index(drop=True)
    rejected = sorted(reasons)
    malformed = pd.DataFrame(
        {
            "user_id": [default_user] * len(rejected),
            "reason": [reasons[at] for at in rejected],
            "payload": [
                json.dumps({"lineNumber": int(numbers[at]), "line": lines[at]}, ensure_ascii=False) for at in rejected
            ],
        }
    )
    return GenericChunk(to_incoming(_scalars(records), default_user), malformed)


def read_ndjson(
    path: Path,
    default_user: str | None,
    chunk_size: int = 15_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[GenericChunk]:
    """Chunks of at most ``chunk_size`` lines. A line that is not a JSON object, or holds a value PostgreSQL cannot
    store (NaN, Infinity, a number beyond a double, a NUL or a lone surrogate in text, metadata that is not an
    object), is a reject with its reason and the line; so is a line that is not UTF-8, holds a NUL byte or is too
    long (`text_lines`)."""
    total = path.stat().st_size
    first = True
    with open(path, "rb") as handle:
        for block in read_lines(handle):
            text = block.text[1:] if first and block.text.startswith("\ufeff") else block.text
            first = first and not block.text and not block.numbers.size
            all_lines = text.split("\n")[:-1] if text else []
            trimmed = pc.utf8_trim_whitespace(pa.array(all_lines, pa.string()))
            filled = np.flatnonzero(pc.not_equal(trimmed, "").to_numpy(zero_copy_only=False))
            lines = trimmed.take(pa.array(filled)).to_pylist()
            numbers = block.numbers[filled]
            bad = _bad_lines(block.bad, default_user)
            for at in range(0, max(len(lines), 1), chunk_size):
                chunk = _ndjson_chunk(lines[at : at + chunk_size], numbers[at : at + chunk_size], default_user)
                if at == 0 and len(bad):
                    chunk = GenericChunk(chunk.samples, pd.concat([bad, chunk.malformed], ignore_index=True))
                yield chunk
            if on_progress:
                on_progress(min(block.bytes_done, total), total)


def read_csv(
    path: Path,
    default_user: str | None,
    chunk_size: int = 15_000,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[GenericChunk]:
    """Chunks of at most ``chunk_size`` rows; the first row is the header. A row with the wrong number of fields is
    a reject with the row as text; so is a line that is not UTF-8, holds a NUL byte or is too long (`text_lines`)."""
    total = path.stat().st_size
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    header: list[str] | None = None
    with open(path, "rb") as handle:
        for block in read_lines(handle, quoted=True):
            text = block.text
            if header is None and text.startswith("\ufeff"):
                text = text[1:]
            rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
            if header is None and rows:
                header, rows = [name.strip() for name in rows[0]], rows[1:]
            bad = _bad_lines(block.bad, default_user)
            for at in range(0, max(len(rows), 1), chunk_size):
                chunk = _csv_chunk(rows[at : at + chunk_size], header or [], default_user)
                if at == 0 and len(bad):
                    chunk = GenericChunk(chunk.samples, pd.concat([bad, chunk.malformed], ignore_index=True))
                yield chunk
            if on_progress:
                on_progress(min(block.bytes_done, total), total)


def _csv_chunk(rows: list[list[str]], header: list[str], default_user: str | None) -> GenericChunk:
    fits = np.fromiter(map(len, rows), np.int64, len(rows)) == len(header)
    good = rows if fits.all() else [row for row, ok in zip(rows, fits, strict=True) if ok]
    records = pd.DataFrame(good, columns=header, dtype=object) if header else pd.DataFrame()
    records = records.mask(records == "")
    if "metadata" in records:
        records["metadata"] = records["metadata"].map(_json_or_text, na_action="ignore")
    wrong = [_csv_line(row) for row, ok in zip(rows, fits, strict=True) if not ok] if not fits.all() else []
    return GenericChunk(to_incoming(records, default_user), _malformed(wrong, "malformed CSV row", default_user))


def _json_or_text(text: str) -> object:
    """A metadata cell: its JSON object, else ``{"text": cell}`` (also when its JSON holds what cannot be stored)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return {"text": text}
    if not isinstance(value, dict) or _unstorable(value) is not None:
        return {"text": text}
    return value


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue().rstrip("\r\n")
