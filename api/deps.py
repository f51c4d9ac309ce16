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


async def get_db(engine: EngineDep) -> AsyncIterator[Connection]:
    """The request's database connection: psycopg 3 from the engine's pool, in autocommit (a statement commits on
    its own; several commit together inside ``conn.transaction()``). FastAPI resolves it once per request, so
    authentication and the route share it. Borrowed on a worker thread (the pool may wait for a free connection or
    open one); given back in the event loop, which costs no round trip (the connection is idle after a request: a
    transaction a route opened has ended with it; a broken one is dropped), so a request takes one thread hop less."""
    borrowed = psycopg_connection(engine)
    conn = await run_in_threadpool(borrowed.__enter__)
    try:
        yield conn
    except BaseException as exc:
        borrowed.__exit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        borrowed.__exit__(None, None, None)


DbDep = Annotated[Connection, Depends(get_db)]


Connections = Callable[[], AbstractContextManager[Connection]]


def get_connections(engine: EngineDep) -> Connections:
    """For a route whose answer outlives its request's work (an event stream): a connection per use, borrowed from
    the pool around each use (``with connections() as conn``), so the route holds none while it waits."""
    return partial(psycopg_connection, engine)


ConnectionsDep = Annotated[Connections, Depends(get_connections)]
