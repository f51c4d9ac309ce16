"""Structural checks of incoming samples before they land in ``raw.samples``. Pure pandas, no database.

A chunk of incoming rows (any importer's output) is split into rows that can land and rows that go to quarantine
with their reasons and original payload. Only *structural* problems are rejected here (unparseable dates, unknown
type, unconvertible unit, end before start, an instant outside `EARLIEST_INSTANT` .. tomorrow, non-numeric value,
unknown time zone); plausibility (a heart rate of
400) is the pipeline's validate step, which keeps the raw row and rejects it there with its own reason.

A sample's zone (DESIGN §4), what its local day and hour are counted in: the ``timezone`` given with it (an IANA
name, or a fixed offset ``+HH:MM``); else, for ISO-8601 instants (NDJSON, CSV, device sync), the offset it is written
with when that is not UTC: ``2026-03-11T03:30:00+02:00`` lands with the zone ``+02:00``, its wall clock 03:30. ``Z``,
``+00:00`` and ``-00:00`` carry no zone (most clients write every instant in UTC), nor does a sample whose start and
end are written with different offsets (a night across a DST change: no one fixed offset is its zone); those land
without a zone and the pipeline uses the user's time zone history, then their home zone. Apple export offsets are
the phone's at export time, never a sample's zone (its ``HKTimeZone`` is).
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.catalog import GENERIC_ASLEEP_STAGE, METRICS, SLEEP_METRIC, SLEEP_STAGES, canonical_factors
from pipeline.devices import DeviceClass, classes_named, classify_sources

# Columns an importer provides; missing optional ones are filled with nulls.
INCOMING_COLUMNS = (
    "user_id",
    "metric",
    "value",
    "unit",
    "stage",
    "start",
    "end",
    "timezone",
    "source_name",
    "device_class",
    "source_app",
    "device",
    "external_id",
    "metadata",
    "user_entered",
)
# Columns of raw.samples written by the landing (identity is computed in SQL).
LANDED_COLUMNS = (
    "user_id",
    "metric",
    "value",
    "unit",
    "stage",
    "start_utc",
    "end_utc",
    "timezone",
    "source_name",
    "device_class",
    "source_app",
    "device",
    "external_id",
    "metadata",
)

APPLE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"
# Instants a health sample can plausibly carry: none before 1970 (no consumer device recorded one, and a year 1 or 0
# is a client's zero value), none more than a day past the landing's clock (a day of slack for clocks set ahead).
EARLIEST_INSTANT = pd.Timestamp("1970-01-01", tz="UTC")
FUTURE_SLACK = pd.Timedelta(days=1)
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_OFFSET_ZONE = re.compile(r"^[+-]\d{2}:?\d{2}$")


@dataclass(frozen=True)
class LandingSplit:
    accepted: pd.DataFrame  # LANDED_COLUMNS
    rejected: pd.DataFrame  # user_id, reason, payload (JSON text); indexed by the incoming row's label


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _parse_instants(texts: pd.Series, date_format: str) -> tuple[pd.Series, pd.Series]:
    """(UTC instants, offset-missing mask). Values already datetime pass through."""
    if pd.api.types.is_datetime64_any_dtype(texts):
        parsed = pd.to_datetime(texts, utc=True)
        return parsed, pd.Series(False, index=texts.index)
    as_text = texts.astype("string").str.strip()
    if date_format == APPLE_DATE_FORMAT:
        return parse_apple_instants(as_text), pd.Series(False, index=texts.index)
    if date_format == "ISO8601":
        no_offset = as_text.notna() & ~as_text.str.contains(_HAS_OFFSET, na=False)
        parsed = pd.to_datetime(as_text.where(~no_offset), format="ISO8601", utc=True, errors="coerce")
        missing_offset = no_offset
        if no_offset.any():  # a date and time that only lacks its offset, not text that is no date at all
            naive = pd.to_datetime(as_text[no_offset], format="ISO8601", errors="coerce")
            missing_offset = no_offset & naive.reindex(as_text.index).notna()
        return parsed, missing_offset
    parsed = pd.to_datetime(as_text, format=date_format, utc=True, errors="coerce")
    return parsed, pd.Series(False, index=texts.index)


# A time of day, then its offset (Arrow's RE2 syntax): "03:30:00+02:00", "03:30:00.250-03", "0330+0530".
_WRITTEN_OFFSET = r"[T\s]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})?\s*$"


def _written_offsets(texts: pd.Series) -> pa.Array:
    """``+HH:MM`` of each text written with a non-zero offset after its time of day; null elsewhere."""
    parts = pc.extract_regex(
        pa.array(texts.astype("string").array, type=pa.string(), from_pandas=True), _WRITTEN_OFFSET
    )
    hours = pc.struct_field(parts, "hours")
    minutes = pc.struct_field(parts, "minutes")
    minutes = pc.if_else(pc.equal(minutes, ""), "00", minutes)
    zone = pc.binary_join_element_wise(pc.struct_field(parts, "sign"), hours, ":", minutes, "")
    zero = pc.and_(pc.equal(hours, "00"), pc.equal(minutes, "00"))
    return pc.if_else(zero, pa.scalar(None, pa.string()), zone)


def written_offset_zones(starts: pd.Series, ends: pd.Series) -> pd.Series:
    """The fixed-offset zone (``+HH:MM``) ISO-8601 texts are written in, where start and end carry the same
    non-zero offset; missing elsewhere (``Z``, a zero offset, no offset, different offsets, not text)."""
    if pd.api.types.is_datetime64_any_dtype(starts) or pd.api.types.is_datetime64_any_dtype(ends):
        return pd.Series(pd.NA, index=starts.index, dtype="string")  # parsed already: the offset is gone
    start, end = _written_offsets(starts), _written_offsets(ends)
    same = pc.if_else(pc.equal(start, end), start, pa.scalar(None, pa.string()))
    return pd.Series(same.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get), index=starts.index)


def parse_apple_instants(texts: pd.Series) -> pd.Series:
    """``YYYY-MM-DD HH:MM:SS +HHMM`` to UTC instants, NaT where malformed (Arrow's strptime: ~20x pandas')."""
    values = pa.array(texts.astype("string").array, type=pa.string(), from_pandas=True)
    parsed = pc.strptime(values, format=APPLE_DATE_FORMAT, unit="us", error_is_null=True)
    return pd.Series(parsed.to_pandas().array, index=texts.index, dtype="datetime64[us, UTC]")


def _numbers(values: pd.Series) -> pd.Series:
    """Numbers from any column, NaN where not a number. Text goes through Arrow's parser first (~8x faster than
    ``pd.to_numeric``, and the same doubles: both round correctly); text Arrow refuses (spaces around a number,
    words) goes to ``pd.to_numeric``, which decides what is a number as it always has."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        try:
            parsed = pc.cast(pa.array(values.array, type=pa.string(), from_pandas=True), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            return pd.Series(parsed.to_numpy(zero_copy_only=False), index=values.index, dtype="float64")
    return pd.to_numeric(values, errors="coerce")


def _add_reason(reasons: pd.Series, mask: pd.Series | np.ndarray, reason: str | Callable[[], pd.Series]) -> pd.Series:
    """Append ``reason`` to the reasons of the rows in ``mask``; a callable reason (a text per row) is only built
    when some row needs it, so clean chunks pay for no string building."""
    if isinstance(mask, pd.Series):
        mask = mask.to_numpy(dtype=bool, na_value=False)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return reasons
    text = reason if isinstance(reason, str) else reason()[mask].fillna("?")
    joined = reasons[mask].where(reasons[mask] == "", reasons[mask] + "; ") + text
    reasons = reasons.copy()
    reasons[mask] = joined
    return reasons


def _payloads(frame: pd.DataFrame) -> list[str]:
    """JSON of the original fields of rejected rows (few rows: rejects are the exception)."""
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [json.dumps(record, default=str, ensure_ascii=False) for record in records]


def split_for_landing(
    incoming: pd.DataFrame,
    date_format: str = "ISO8601",
    unnamed_class: DeviceClass | None = None,
    payloads: bool = True,
) -> LandingSplit:
    """Split a chunk of incoming samples into landable rows and quarantined rejects (vectorized).

    A row's device class: its ``device_class`` (a class's name or a seed word, `pipeline.devices`); else manual when
    a person typed it in; else the class its source name names (``apple_watch``, ``iphone``, ...); else
    ``unnamed_class`` when given (a registered device's own class), or else the class read from the source name
    and device descriptor. ``payloads``: give each reject its payload (a caller keeping the text each reject was
    sent as, as device sync does, passes False: the payloads are then null)."""
    frame = incoming.reindex(columns=list(INCOMING_COLUMNS))
    reasons = pd.Series("", index=frame.index, dtype=object)

    metric = frame["metric"].astype("string").str.strip().str.upper()
    known_metric = metric.isin(list(METRICS))
    missing_metric = metric.isna() | (metric == "")
    reasons = _add_reason(reasons, missing_metric, "missing metric type")
    reasons = _add_reason(
        reasons, ~known_metric & ~missing_metric, lambda: "unknown metric type '" + frame["metric"].astype(str) + "'"
    )
    reasons = _add_reason(reasons, frame["user_id"].isna() | (frame["user_id"].astype(str) == ""), "missing user")

    value = _numbers(frame["value"])
    reasons = _add_reason(reasons, value.isna() | ~np.isfinite(value.fillna(0)), "value is not a number")

    start, start_naive = _parse_instants(frame["start"], date_format)
    end, end_naive = _parse_instants(frame["end"], date_format)
    reasons = _add_reason(reasons, start_naive | end_naive, "timestamp without UTC offset")
    reasons = _add_reason(reasons, start.isna() & ~start_naive, "unparseable start date")
    reasons = _add_reason(reasons, end.isna() & ~end_naive, "unparseable end date")
    reasons = _add_reason(reasons, start.notna() & end.notna() & (end < start), "end before start")
    latest = pd.Timestamp.now(tz="UTC") + FUTURE_SLACK
    implausible = ((start < EARLIEST_INSTANT) | (start > latest)).fillna(False) | (
        (end < EARLIEST_INSTANT) | (end > latest)
    ).fillna(False)
    reasons = _add_reason(
        reasons, implausible, f"instant outside {EARLIEST_INSTANT:%Y-%m-%d} .. {latest:%Y-%m-%d} (UTC)"
    )

    unit = frame["unit"].astype("string").fillna("")
    factors = canonical_factors(metric.where(known_metric, ""), unit, value.fillna(0))
    reasons = _add_reason(
        reasons,
        known_metric & factors.isna(),
        lambda: "unit '" + unit.astype(str) + "' not convertible for " + metric.astype(str),
    )

    is_sleep = metric == SLEEP_METRIC
    stage = frame["stage"].astype("string").str.strip().str.lower()
    stage = stage.where(~is_sleep | stage.notna(), GENERIC_ASLEEP_STAGE).where(is_sleep)
    reasons = _add_reason(
        reasons, is_sleep & ~stage.isin(SLEEP_STAGES), lambda: "unknown sleep stage '" + stage.astype(str) + "'"
    )

    zone = frame["timezone"].astype("string").str.strip()
    zone = zone.where(zone != "")
    distinct_zones = zone.dropna().unique()
    bad_zones = [z for z in distinct_zones if z not in _known_zones() and not _OFFSET_ZONE.match(z)]
    reasons = _add_reason(reasons, zone.isin(bad_zones), lambda: "unknown time zone '" + zone.astype(str) + "'")
    if date_format == "ISO8601":  # a sample's own non-UTC offset is its zone when it names none
        zone = zone.fillna(written_offset_zones(frame["start"], frame["end"]))

    source_name = frame["source_name"].astype("string").str.strip().fillna("").replace("", "unknown")
    given = frame["device_class"].astype("string").str.strip()
    given = given.where(given != "")
    given_class = classes_named(given)  # a class's name or a seed word; anything else is refused, not guessed
    reasons = _add_reason(
        reasons, given.notna() & given_class.isna(), lambda: "unknown device class '" + given.astype(str) + "'"
    )
    derived_class = classify_sources(
        source_name, frame["device"], frame["user_entered"].astype("boolean").fillna(False), unnamed_class
    )
    device_class = given_class.fillna(derived_class)

    ok = reasons == ""
    metadata = frame["metadata"]
    if not isinstance(metadata.dtype, pd.StringDtype):  # objects (dicts from JSON) to JSON text; text stays
        metadata = metadata.map(
            lambda m: m if (m is None or isinstance(m, str)) else json.dumps(m, ensure_ascii=False), na_action="ignore"
        )
    accepted = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str),
            "metric": metric,
            "value": value,
            "unit": unit,
            "stage": stage,
            "start_utc": start,
            "end_utc": end,
            "timezone": zone,
            "source_name": source_name,
            "device_class": device_class,
            "source_app": frame["source_app"],
            "device": frame["device"],
            "external_id": frame["external_id"],
            "metadata": metadata,
        }
    )
    if not ok.all():
        accepted = accepted[ok]
    rejected_rows = incoming.loc[~ok]
    rejected = pd.DataFrame(
        {
            "user_id": frame.loc[~ok, "user_id"],
            "reason": reasons[~ok],
            "payload": _payloads(rejected_rows) if payloads and len(rejected_rows) else None,
        },
        index=rejected_rows.index,
    )
    return LandingSplit(accepted.reset_index(drop=True), rejected)
