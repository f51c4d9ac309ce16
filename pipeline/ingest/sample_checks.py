"""Checks of synced samples before they become rows: what PostgreSQL cannot store, and the size limits.

A sample failing one is rejected on its own (quarantined with its text as sent, the reason in the response); the
rest of the batch lands. What cannot be stored: a NUL character or an unpaired UTF-16 surrogate anywhere in the
sample (PostgreSQL's text and jsonb refuse both), metadata that is not a JSON object or holds NaN/Infinity, a
number past a double's range. Limits: each text field's length, metadata's serialized size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_MAX_TEXT_CHARS = 1024
DEFAULT_MAX_METADATA_BYTES = 16 * 1024
# Incoming columns holding text (or a number written as text), and the field name a client knows them by.
TEXT_FIELDS = {
    "metric": "type",
    "value": "value",
    "unit": "unit",
    "stage": "stage",
    "start": "startDate",
    "end": "endDate",
    "timezone": "timezone",
    "source_name": "sourceDevice",
    "device_class": "deviceClass",
    "source_app": "sourceApp",
    "device": "device",
    "external_id": "id",
}
# An integer of this many digits is past a double's range (1.8e308): no value, and pandas cannot even coerce it.
_MAX_VALUE_DIGITS = 308

_HIGH = r"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
UNSTORABLE_REASON = "holds a NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff), which cannot be stored"


@dataclass(frozen=True)
class SampleLimits:
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES


def unstorable(texts: pa.Array) -> np.ndarray:
    """Which JSON texts hold a ``\\u0000`` escape or an unpaired surrogate escape (vectorized, RE2).

    The texts are valid UTF-8, so such characters can only be escapes. Escaped backslashes are blanked first: after
    ``\\\\`` a ``u0000`` is text, not an escape. A text has an unpaired surrogate when its high and low surrogate
    escapes outnumber twice its high-low pairs."""
    found = np.zeros(len(texts), dtype=bool)
    escaping = np.flatnonzero(pc.match_substring(texts, "\\u").to_numpy(zero_copy_only=False))
    if not len(escaping):  # the usual batch: no \u escape at all
        return found
    plain = pc.replace_substring(texts.take(pa.array(escaping)), "\\\\", "__")
    nul = pc.match_substring(plain, "\\u0000")
    high = pc.count_substring_regex(plain, _HIGH)
    low = pc.count_substring_regex(plain, _LOW)
    pairs = pc.count_substring_regex(plain, _HIGH + _LOW)
    lone = pc.greater(pc.add(high, low), pc.multiply(pairs, 2))
    found[escaping] = pc.or_(nul, lone).to_numpy(zero_copy_only=False)
    return found


class Reasons:
    """Reasons per row, joined with ``; `` when a row has several (as the landing's)."""

    def __init__(self, index: pd.Index) -> None:
        self.series = pd.Series("", index=index, dtype=object)

    def add(self, mask: pd.Series | np.ndarray, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            current = self.series[mask]
            self.series[mask] = current.where(current == "", current + "; ") + reason


def _kinds(column: pd.Series) -> pd.Series:
    return column.map(type, na_action="ignore")


def check_fields(incoming: pd.DataFrame, limits: SampleLimits) -> tuple[pd.Series, pd.Series | None]:
    """(Reasons per row, '' where the row passes; metadata as JSON text, None when no row has any).

    ``incoming`` has the landing's incoming columns (`pipeline.ingest.generic.to_incoming`), decoded from JSON."""
    reasons = Reasons(incoming.index)
    for column, field in TEXT_FIELDS.items():
        if column not in incoming:
            continue
        values = incoming[column]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue  # 64-bit numbers: short, in range
        if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
            kinds, nested = None, np.zeros(len(values), dtype=bool)  # text only
        else:  # mixed JSON values
            kinds = _kinds(values)
            nested = kinds.isin([dict, list]).to_numpy()
            reasons.add(nested, f"{field} is an object or array, not {'a number' if column == 'value' else 'text'}")
        lengths = values.where(~nested).astype("string").str.len()
        too_long = lengths.gt(limits.max_text_chars).fillna(False)
        reasons.add(too_long, f"{field} longer than {limits.max_text_chars:,} characters")
        if column == "value" and kinds is not None:
            digits = values[kinds.isin([int]).to_numpy()].astype("string").str.lstrip("-").str.len()
            reasons.add((digits > _MAX_VALUE_DIGITS).reindex(incoming.index, fill_value=False), "value out of range")
    if "metadata" not in incoming:
        return reasons.series, None
    metadata = incoming["metadata"]
    present = metadata.notna().to_numpy()
    objects = _kinds(metadata).isin([dict]).to_numpy()
    reasons.add(present & ~objects, "metadata is not a JSON object")
    as_json = metadata[objects].map(_json_or_none)
    reasons.add(
        (as_json.isna()).reindex(incoming.index, fill_value=False),
        "metadata holds NaN or Infinity, or is nested too deeply",
    )
    texts = as_json.dropna()
    lengths = pc.binary_length(pa.array(texts.to_numpy(dtype=object), pa.large_string()))
    sizes = pd.Series(lengths.to_numpy(zero_copy_only=False), index=texts.index)
    reasons.add(
        (sizes > limits.max_metadata_bytes).reindex(incoming.index, fill_value=False),
        f"metadata over {limits.max_metadata_bytes:,} bytes of JSON",
    )
    return reasons.series, as_json.reindex(incoming.index)


# One encoder for every call: `json.dumps` with options builds a new encoder each time, a third of a small
# object's cost.
_METADATA_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json_or_none(metadata: dict[str, object]) -> str | None:
    try:
        return _METADATA_JSON.encode(metadata)
    except (ValueError, RecursionError):
        return None
