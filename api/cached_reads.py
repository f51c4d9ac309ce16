"""Answering the read routes through the response cache: the ETag, 304 for a matching ``If-None-Match``, the cached
bytes of an answer computed before, or the answer computed, serialized once and kept.

A cache hit costs the request one statement (the key's lookup with the user's data version and local today,
`api.queries.read_state`) and a store lookup, on one worker thread: the bytes are sent as they were kept, not validated
again. The store lives on the app (`install_response_cache`): per API process, or Redis for all of them (docs/api.md).

Each kept answer carries how many records it holds (`RECORDS`, in a 4-byte prefix of the kept bytes), so that a
cache hit is audited with its count as a computed answer is (api/audit.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Response, status
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from api import audit
from api.etags import Param, ReadKey, none_match_hits
from api.response_cache import ResponseCache, cache_from_settings
from api.schemas.fhir import FhirBundle, FhirPatient
from api.schemas.profile import Profile
from api.schemas.reads import Aggregates, HealthScore, Insight, Sources, Summary
from api.subject import PendingReading, Reading
from pipeline.infra.database import Connection, psycopg_connection
from pipeline.infra.settings import Settings

T = TypeVar("T")

# The read answers' models. Their schemas' fingerprint is part of every key and ETag: a deploy that changes a shape
# never serves (nor confirms with a 304) an answer of the previous shape.
ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "summary": TypeAdapter(Summary),
    "aggregates": TypeAdapter(Aggregates),
    "insights": TypeAdapter(list[Insight]),
    "health_scores": TypeAdapter(list[HealthScore]),
    "sources": TypeAdapter(Sources),
    "profile": TypeAdapter(Profile),
    "fhir_patient": TypeAdapter(FhirPatient),
    "fhir_observations": TypeAdapter(FhirBundle),
}


@dataclass(frozen=True)
class Serialized:
    """An answer already serialized (JSON the database built), with how many records it holds."""

    body: bytes
    records: int


# How many records each answer holds, for the audit trail: metrics of the day, insights, scores, sources, one
# profile or Patient, Observations (aggregates come `Serialized` with their points counted).
RECORDS: dict[str, Callable[[Any], int]] = {
    "summary": lambda answer: len(answer.metrics),
    "insights": len,
    "health_scores": len,
    "sources": lambda answer: len(answer.sources),
    "profile": lambda _: 1,
    "fhir_patient": lambda _: 1,
    "fhir_observations": lambda answer: answer.total,
}
_COUNT_BYTES = 4


def _kept(records: int, body: bytes) -> bytes:
    return records.to_bytes(_COUNT_BYTES, "big") + body


def _unkept(value: bytes) -> tuple[int, bytes]:
    return int.from_bytes(value[:_COUNT_BYTES], "big"), value[_COUNT_BYTES:]


# FHIR answers: their own media type, and no empty elements (FHIR forbids nulls)
FHIR_JSON = "application/fhir+json"
_FHIR_ROUTES = {"fhir_patient", "fhir_observations"}
_SCHEMAS = {name: adapter.json_schema(by_alias=True) for name, adapter in ADAPTERS.items()}
_KEPT_FORMAT = 2  # the kept bytes' layout (2: a record count before the body): older entries are never read
SHAPES = hashlib.sha256(json.dumps([_KEPT_FORMAT, _SCHEMAS], sort_keys=True).encode()).hexdigest()[:12]

CACHE_CONTROL = "private, no-cache"  # browsers keep the answer but ask again each time (a 304 when unchanged)
_HEADER_DOCS = {
    "ETag": {
        "description": "weak validator of this answer: send it back in If-None-Match to get a 304 while unchanged",
        "required": True,
        "schema": {"type": "string"},
    },
    "Cache-Control": {"description": CACHE_CONTROL, "required": True, "schema": {"type": "string"}},
}
# OpenAPI documentation of a read route's 200 headers and its 304
CACHED_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": _HEADER_DOCS},
    304: {
        "description": "Not Modified: If-None-Match named this answer's current ETag (or `*`); no body",
        "headers": _HEADER_DOCS,
        "content": {},
    },
}

IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=4096,
        description='ETags of answers the client holds (`W/"..."`, comma-separated, or `*`): 304 when one is current',
    ),
]


def install_response_cache(app: FastAPI, settings: Settings) -> None:
    app.state.response_cache = cache_from_settings(settings, SHAPES)


async def cached_answer(
    pending: PendingReading,
    route: str,
    if_none_match: str | None,
    params: Callable[[Reading], Mapping[str, Param]],
    compute: Callable[[Connection, Reading], T | Serialized],
) -> Response:
    """The answer of ``route`` for ``params`` (defaults resolved, some from the reading: a user's local today):
    304 when ``if_none_match`` names it, else the kept bytes, else ``compute`` serialized with the route's model,
    kept and sent. All of it on one worker thread, in one hop from the event loop: resolving whose data (the key's
    lookup and the user's state, which may answer 401, 403 or 404), then ``params`` (where a route checks its
    parameters: a 422 comes after a 401 and is audited with the key), the cache lookup and the database's work.

    The reading's state is read before ``compute`` reads the rows: an answer computed while a write commits is
    then kept under the version before it (and replaced at the next read), never an answer older than its version."""

    def answer() -> tuple[str, bytes | None]:
        with psycopg_connection(pending.engine) as conn:  # borrowed and given back in this hop: no request-long lease
            return answer_on(conn)

    def answer_on(conn: Connection) -> tuple[str, bytes | None]:
        reading = pending.resolve(conn)
        state = reading.state
        key = ReadKey(SHAPES, route, reading.user_id, state.version, params(reading), state.user_since)
        if if_none_match is not None and none_match_hits(if_none_match, key.etag):
            audit.note_records(0)  # nothing sent: the client holds the answer
            return key.etag, None
        kept = pending.cache.get(key.digest)
        if kept is None:
            records, body = _computed_and_kept(pending.cache, route, key.digest, lambda: compute(conn, reading))
        else:
            records, body = _unkept(kept)
        audit.note_records(records)
        return key.etag, body

    etag, body = await run_in_threadpool(answer)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    if body is None:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type=FHIR_JSON if route in _FHIR_ROUTES else "application/json", headers=headers)


def _computed_and_kept(
    cache: ResponseCache, route: str, digest: str, compute: Callable[[], T | Serialized]
) -> tuple[int, bytes]:
    answer = compute()
    if isinstance(answer, Serialized):  # JSON the database built
        records, body = answer.records, answer.body
    else:
        records = RECORDS[route](answer)
        body = ADAPTERS[route].dump_json(answer, exclude_none=route in _FHIR_ROUTES)
    cache.put(digest, _kept(records, body))
    return records, body
