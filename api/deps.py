"""Request dependencies, declared once with ``Annotated`` and reused by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from pipeline.infra.database import Connection, psycopg_connection


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


class RequestConnection:
    """The request's one pooled connection, borrowed by whichever dependency needs it first, on the worker thread
    that runs that dependency's first statement: the key lookup borrows it in the same thread hop as it reads the
    key (`api.auth.get_authenticated`), so an authenticated read takes one hop less than a borrow followed by a
    lookup. Given back in the event loop when the request ends (no round trip: the connection is idle after a
    request, a transaction a route opened having ended with it; a broken one is dropped)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lease: tuple[AbstractContextManager[Connection], Connection] | None = None

    @property
    def borrowed(self) -> bool:
        return self._lease is not None

    def connection(self) -> Connection:
        """The request's connection, borrowed now if it was not yet (call it on a worker thread: the pool may wait
        for a free connection or open one)."""
        if self._lease is None:
            borrowing = psycopg_connection(self._engine)
            self._lease = (borrowing, borrowing.__enter__())
        return self._lease[1]

    def give_back(self, exc: BaseException | None = None) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            lease[0].__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


async def get_request_connection(engine: EngineDep) -> AsyncIterator[RequestConnection]:
    """The request's connection slot (resolved once per request, like every dependency): nothing is borrowed until
    a dependency asks for the connection."""
    slot = RequestConnection(engine)
    try:
        yield slot
    except BaseException as exc:
        slot.give_back(exc)
        raise
    else:
        slot.give_back()


RequestConnectionDep = Annotated[RequestConnection, Depends(get_request_connection)]


async def get_db(slot: RequestConnectionDep) -> Connection:
    """The request's database connection: psycopg 3 from the engine's pool, in autocommit (a statement commits on
    its own; several commit together inside ``conn.transaction()``). Authentication and the route share it."""
    if slot.borrowed:
        return slot.connection()
    return await run_in_threadpool(slot.connection)


DbDep = Annotated[Connection, Depends(get_db)]


Connections = Callable[[], AbstractContextManager[Connection]]


def get_connections(engine: EngineDep) -> Connections:
    """For a route whose answer outlives its request's work (an event stream): a connection per use, borrowed from
    the pool around each use (``with connections() as conn``), so the route holds none while it waits."""
    return partial(psycopg_connection, engine)


ConnectionsDep = Annotated[Connections, Depends(get_connections)]
