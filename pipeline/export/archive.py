"""Everything held about a user, as one zip archive written as a stream (`GET /v1/me/export`,
`healthpipe users export`).

The archive holds (docs/privacy.md, "Export"):

- ``profile.json``: the profile, home time zone and time zone history, step goal and source priority;
- ``devices.json``; ``api_keys.ndjson`` (prefixes and labels, never keys); ``shares.ndjson`` (never codes);
- ``samples.ndjson``: every raw sample as sent, in the generic importer's format (``healthpipe import FILE --user
  NEW`` lands them again); ``quarantine.ndjson``: what could not land, with the reason; ``batches.ndjson``: the
  imports and syncs that brought them;
- ``daily.csv``: the daily aggregates (marts.daily); ``insights.ndjson``; ``audit.ndjson``: who read the data;
- ``fhir/Patient.json`` and ``fhir/Observation-bundle.json``: the FHIR R4 Patient and a Bundle of every daily value;
- ``manifest.json`` last: when, and how many records each file holds.

Memory stays bounded whatever the history's length: the large files are COPY streams from the server written into
the zip as they arrive (deflated, with data descriptors: the archive is never seeked), and the bytes are handed out
every `CHUNK_BYTES`. Only the FHIR Bundle is built whole (one entry per day and metric: ~3,650 for a year).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import IO, Any

from psycopg import sql

from pipeline import accounts, profiles
from pipeline.catalog import METRICS
from pipeline.fhir.daily_values import daily_values
from pipeline.fhir.observations import searchset_bundle
from pipeline.fhir.patient import patient
from pipeline.infra.database import Connection
from pipeline.privacy import reads

CHUNK_BYTES = 1 << 20
MEDIA_TYPE = "application/zip"
# One JSON value per line out of COPY: CSV with a quote and a delimiter JSON text never holds raw (control characters
# are escaped in JSON), so each line leaves the server as json_build_object wrote it, with no COPY escaping.
_LINES = "COPY ({query}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
_CSV = "COPY ({query}) TO STDOUT (FORMAT csv, HEADER)"


class UnknownUserError(LookupError):
    """No such user to export."""


@dataclass
class ExportCounts:
    """Records per file of an archive, filled as it is written."""

    files: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.files.values())


class _Sink(io.RawIOBase):
    """Where the zip writes: bytes kept until `drain` hands them out. Not seekable, so zipfile writes data
    descriptors instead of going back to patch each entry's header."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return out


def _query(name: str, user_id: str, wrapper: str) -> sql.Composed:
    text = (resources.files("pipeline.export") / "sql" / f"{name}.sql").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    query = sql.SQL(body).format(user=sql.Literal(user_id))
    return sql.SQL(wrapper).format(query=query)


def _plain(value: object) -> object:
    """JSON for what json does not know: dates and instants in ISO 8601, anything else (ids) as text."""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, default=_plain).encode()


class _Archive:
    def __init__(self, conn: Connection, user_id: str, counts: ExportCounts) -> None:
        self.conn, self.user_id, self.counts = conn, user_id, counts
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED)

    def small(self, name: str, value: object, records: int) -> Iterator[bytes]:
        self.zip.writestr(name, _json_bytes(value))
        self.counts.files[name] = records
        yield from self._ready()

    def small_lines(self, name: str, values: Sequence[object]) -> Iterator[bytes]:
        """A few JSON values, one per line."""
        lines = b"".join(json.dumps(v, ensure_ascii=False, default=_plain).encode() + b"\n" for v in values)
        self.zip.writestr(name, lines)
        self.counts.files[name] = len(values)
        yield from self._ready()

    def copied(self, name: str, query: str, wrapper: str) -> Iterator[bytes]:
        """A COPY stream into the archive entry ``name``; its records are its lines (less a CSV's header)."""
        lines = 0
        entry: IO[bytes]
        with (
            self.zip.open(name, "w", force_zip64=True) as entry,
            self.conn.cursor() as cursor,
            cursor.copy(_query(query, self.user_id, wrapper)) as copy,
        ):
            for block in copy:
                data = bytes(block)
                lines += data.count(b"\n")
                entry.write(data)
                yield from self._ready()
        self.counts.files[name] = max(0, lines - 1) if wrapper is _CSV else lines
        yield from self._ready()

    def _ready(self) -> Iterator[bytes]:
        if self.sink.size >= CHUNK_BYTES:
            yield self.sink.drain()

    def close(self) -> bytes:
        self.zip.close()
        return self.sink.drain()


def profile_document(conn: Connection, user_id: str) -> dict[str, object]:
    profile = profiles.get_profile(conn, user_id)
    user = accounts.get_user(conn, user_id)
    if profile is None or user is None:
        raise UnknownUserError(f"no user {user_id!r}")
    order, custom = accounts.source_priority(conn, user_id)
    history = conn.execute(
        "SELECT valid_from, timezone FROM app.user_timezones WHERE user_id = %s ORDER BY valid_from", (user_id,)
    ).fetchall()
    return {
        "userId": user_id,
        "displayName": profile.display_name,
        "givenName": profile.given_name,
        "familyName": profile.family_name,
        "gender": profile.gender,
        "birthDate": profile.birth_date,
        "homeTimezone": user.home_timezone,
        # where the user was when: the zone of a sample sent without one (samples.ndjson) follows it
        "timezoneHistory": [{"validFrom": valid_from, "timezone": zone} for valid_from, zone in history],
        "stepGoal": accounts.step_goal(conn, user_id),
        "sourcePriority": [str(c.value) for c in order] if custom else None,
    }


def _date_range(conn: Connection, user_id: str) -> tuple[dt.date, dt.date] | None:
    row = conn.execute(
        "SELECT min(local_date), max(local_date) FROM marts.daily WHERE user_id = %s", (user_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    first, last = row
    assert isinstance(first, dt.date) and isinstance(last, dt.date)
    return first, last


def _stage_metadata(conn: Connection, user_id: str) -> None:
    """The user's samples' metadata, sealed in the database, decrypted a chunk at a time into the session's
    temporary table ``export_metadata`` that samples.sql joins (COPY in; the join stays set-based)."""
    conn.execute("CREATE TEMPORARY TABLE IF NOT EXISTS export_metadata (chunk_id uuid, slot integer, metadata text)")
    conn.execute("TRUNCATE export_metadata")
    with conn.cursor() as cursor:
        for chunk_id, texts in reads.metadata_chunks(conn, user_id):
            with cursor.copy("COPY export_metadata (chunk_id, slot, metadata) FROM STDIN") as copy:
                for slot, text in enumerate(texts):
                    if text is not None:
                        copy.write_row((chunk_id, slot, text))


def _json_or_text(text: str) -> object:
    """A quarantined payload as the JSON it was, or as text when it was not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def archive_chunks(conn: Connection, user_id: str, counts: ExportCounts | None = None) -> Iterator[bytes]:
    """The archive of ``user_id`` as a stream of byte chunks (about `CHUNK_BYTES` each); ``counts`` is filled as
    it goes (complete once the stream ends). `UnknownUserError` before the first chunk for an unknown user."""
    counts = counts if counts is not None else ExportCounts()
    document = profile_document(conn, user_id)  # raises before anything is sent
    exported_at = dt.datetime.now(dt.UTC)
    archive = _Archive(conn, user_id, counts)
    yield from archive.small("profile.json", document, 1)
    devices = [
        {"deviceId": d.device_id, "deviceClass": d.device_class, "name": d.name, "lastSyncAt": d.last_sync_at}
        for d in accounts.list_devices(conn, user_id)
    ]
    yield from archive.small("devices.json", devices, len(devices))
    yield from archive.copied("api_keys.ndjson", "api_keys", _LINES)
    yield from archive.copied("shares.ndjson", "shares", _LINES)
    _stage_metadata(conn, user_id)
    yield from archive.copied("samples.ndjson", "samples", _LINES)
    conn.execute("DROP TABLE export_metadata")
    quarantined = [
        {"reason": q.reason, "payload": _json_or_text(q.payload), "quarantinedAt": q.quarantined_at}
        for q in reads.quarantined(conn, user_id=user_id)
    ]
    yield from archive.small_lines("quarantine.ndjson", quarantined)
    yield from archive.copied("batches.ndjson", "batches", _LINES)
    yield from archive.copied("daily.csv", "daily", _CSV)
    yield from archive.copied("insights.ndjson", "insights", _LINES)
    yield from archive.copied("audit.ndjson", "audit", _LINES)
    profile = profiles.get_profile(conn, user_id)
    assert profile is not None
    yield from archive.small("fhir/Patient.json", patient(profile), 1)
    days = _date_range(conn, user_id)
    rows = daily_values(conn, user_id, list(METRICS), *days) if days else []
    yield from archive.small("fhir/Observation-bundle.json", searchset_bundle(user_id, rows), len(rows))
    manifest = {"userId": user_id, "exportedAt": exported_at, "records": dict(counts.files)}
    archive.zip.writestr("manifest.json", _json_bytes(manifest))
    yield archive.close()
