"""Request dependencies, declared once with ``Annotated`` and reused by every router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from pipeline.infra.database import Connection, psycopg_connection


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_db(engine: EngineDep) -> Iterator[Connection]:
    """The request's database connection: psycopg 3 from the engine's pool, in autocommit (a statement commits on
    its own; several commit together inside ``conn.transaction()``). FastAPI resolves it once per request, so
    authentication and the route share it; it goes back to the pool when the request is done."""
    with psycopg_connection(engine) as conn:
        yield conn


DbDep = Annotated[Connection, Depends(get_db)]


Connections = Callable[[], AbstractContextManager[Connection]]


def get_connections(engine: EngineDep) -> Connections:
    """For a route whose answer outlives its request's work (an event stream): a connection per use, borrowed from
    the pool around each use (``with connections() as conn``), so the route holds none while it waits."""
    return partial(psycopg_connection, engine)


ConnectionsDep = Annotated[Connections, Depends(get_connections)]
