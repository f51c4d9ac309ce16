"""Database roles other than the warehouse URL's own: the read-only ``analyst`` role (migration ``analyst_role``) and
how to log in as it.

healthpipe never stores the analyst's password. Setting it sends the server a SCRAM-SHA-256 verifier computed here,
as psql's ``\\password`` does: the password itself never reaches the server, so neither its statement log nor
``pg_stat_activity`` can show it.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from pipeline.infra.database import libpq_url, without_password

ANALYST_ROLE = "analyst"


class RoleError(ValueError):
    """A role cannot be given a password here; the message says why."""


def role_url(url: URL, role: str) -> URL:
    """The warehouse URL logging in as ``role``, without a password (the warehouse's password is not the role's)."""
    return without_password(url.set(username=role))


def _require_role(conn: psycopg.Connection[tuple[object, ...]], role: str) -> None:
    if conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        hint = "run `healthpipe db migrate` first" if role == ANALYST_ROLE else "roles are made by the server's admin"
        raise RoleError(f"there is no role {role!r} on this server; {hint}")


def require_role(url: URL, role: str) -> None:
    """Refuse, with what to do, a role the server does not know (rather than psql's bare authentication error)."""
    with psycopg.connect(libpq_url(url)) as conn:
        _require_role(conn, role)


def set_role_password(url: URL, role: str, password: str) -> None:
    """Give ``role`` the password ``password``, connected as the warehouse URL's role (it needs CREATEROLE)."""
    if not password:
        raise RoleError("an empty password is refused")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        _require_role(conn, role)
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))
