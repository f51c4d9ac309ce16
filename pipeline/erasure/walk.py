"""Finding every table that holds rows of a user, and deleting the user's rows from them.

Tables are found in the catalogue at the moment of the erasure (a text column named ``user_id``, any schema), not
from a list in the code, so a table added by a later migration or a dbt model is erased without anyone editing
this module. Tables are emptied of the user children first (a table whose foreign key references another is
emptied before it), so a foreign key without ``ON DELETE CASCADE`` never blocks the erasure, and every row removed
is counted against the table it was in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from psycopg import sql

from pipeline.infra.database import Connection

# Tables of per-user encryption keys: emptied last, by the crypto-shredding step, after every encrypted row is gone.
KEY_TABLE = re.compile(r"^(user|data)_keys?$")


@dataclass(frozen=True)
class UserTable:
    schema: str
    name: str
    referenced_by: tuple[str, ...]  # "schema.table" of tables with user_id whose foreign keys reference this one

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def holds_keys(self) -> bool:
        return KEY_TABLE.match(self.name) is not None


@cache
def sql_file(name: str) -> str:
    return (resources.files("pipeline.erasure") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def user_tables(conn: Connection) -> list[UserTable]:
    """Every table with a ``user_id`` column, referencing tables before the tables they reference."""
    rows = conn.execute(sql_file("user_tables").encode()).fetchall()
    tables = [UserTable(str(schema), str(name), tuple(refs)) for schema, name, refs in rows]  # type: ignore[arg-type]
    return _children_first(tables)


def _children_first(tables: Sequence[UserTable]) -> list[UserTable]:
    """A topological order over the foreign keys (depth-first; a cycle is broken where it is met, the order of
    the remaining tables still respecting every other edge)."""
    by_name = {t.qualified: t for t in tables}
    ordered: list[UserTable] = []
    state: dict[str, str] = {}

    def visit(table: UserTable) -> None:
        if state.get(table.qualified):
            return
        state[table.qualified] = "visiting"
        for child in table.referenced_by:
            if child in by_name and child != table.qualified:
                visit(by_name[child])
        state[table.qualified] = "done"
        ordered.append(table)

    for table in tables:
        visit(table)
    return ordered


def around_keys(tables: Sequence[UserTable]) -> tuple[list[UserTable], list[UserTable], list[UserTable]]:
    """``tables`` (children first) in three parts: the data tables, the key tables, and the tables a key table
    references (directly or through others, such as ``app.users``), which must outlive the keys' rows. Each part
    keeps the children-first order."""
    keys = {t.qualified for t in tables if t.holds_keys}
    parents: set[str] = set()
    changed = True
    while changed:
        changed = False
        for table in tables:
            if table.qualified not in keys | parents and set(table.referenced_by) & (keys | parents):
                parents.add(table.qualified)
                changed = True
    before = [t for t in tables if t.qualified not in keys | parents]
    return before, [t for t in tables if t.qualified in keys], [t for t in tables if t.qualified in parents]


def delete_rows(conn: Connection, user_id: str, tables: Sequence[UserTable]) -> dict[str, int]:
    """Delete the user's rows from each table, in order; rows deleted per table (tables with none left out).
    Call inside a transaction."""
    removed: dict[str, int] = {}
    for table in tables:
        statement = sql.SQL("DELETE FROM {} WHERE user_id = %s").format(sql.Identifier(table.schema, table.name))
        count = conn.execute(statement, (user_id,)).rowcount
        if count:
            removed[table.qualified] = count
    return removed


def remaining_rows(conn: Connection, user_id: str) -> dict[str, int]:
    """Rows of the user in each table that holds any (empty after an erasure)."""
    found: dict[str, int] = {}
    for table in user_tables(conn):
        statement = sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(
            sql.Identifier(table.schema, table.name)
        )
        row = conn.execute(statement, (user_id,)).fetchone()
        if row and row[0]:
            found[table.qualified] = int(row[0])  # type: ignore[call-overload]
    return found
