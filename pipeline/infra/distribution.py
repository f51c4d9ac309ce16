"""Which warehouse tables a Citus cluster would spread over its workers by user, and whether the schema allows it
(docs/scaling.md, "Running on Citus").

Citus splits a distributed table into shards by the hash of one column, here ``user_id`` everywhere, so that all of a
user's rows of every table sit on one worker (colocation) and the pipeline's per-user SQL runs there whole. It
requires every primary key, unique constraint and exclusion constraint of a distributed table to include that column
(uniqueness is checked within a shard), refuses NULL in it, and accepts a foreign key between two distributed tables
only when it pairs their distribution columns. A table that holds no one user's rows (one row per day for every user,
the metric catalogue) is a reference table instead: copied whole to every worker, joinable with any shard.

`readiness_problems` reads those rules off the catalogue of a migrated (and dbt-built) warehouse on plain
PostgreSQL; `citus_statements` is what an operator runs on the Citus coordinator once there are none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from pipeline.infra.database import Connection
from pipeline.privacy.keyring import UNATTRIBUTED

DISTRIBUTION_COLUMN = "user_id"
# The layers the issue puts on Citus. app (users, keys, shares, batches, audit) and dagster are not checked here:
# docs/scaling.md says what they would be.
DISTRIBUTED_SCHEMAS = ("raw", "core", "marts")
# The table every other distributed table is colocated with: the largest, and the one the pipeline reads first.
COLOCATION_ANCHOR = "raw.samples"
# What user_id holds for rows that name no user (quarantined lines without a user id, the sealed chunks of their
# payloads): the distribution column takes no NULL. It is also the key store's subject for those rows, and no user id
# can be it (app.users allows no ':').
UNATTRIBUTED_USER = UNATTRIBUTED

# Tables of those schemas without a user's rows, and why each is one. Every other table there must have user_id.
REFERENCE_TABLES: Mapping[str, str] = {
    "marts.insight_evaluations": "the local days evaluated for every user at once: one row per day",
    "marts.health_score_days": "the days scored for every user at once: one row per day",
    "marts.metrics": "the metric catalogue (dbt model): a few dozen rows every user's rows refer to",
    "marts.cohort_daily": "percentiles over every user's daily values (dbt model): one row per day and metric",
    "raw.sample_retention": "the retention cutoff of raw.samples' monthly partitions: one row",
}


@dataclass(frozen=True)
class _Table:
    qualified: str
    has_user_id: bool
    user_id_not_null: bool
    keys_without_user_id: tuple[str, ...]


@cache
def _sql(name: str) -> str:
    return (resources.files("pipeline.infra") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def _tables(conn: Connection, schemas: Sequence[str]) -> list[_Table]:
    rows = conn.execute(_sql("distribution_tables").encode(), {"schemas": list(schemas)}).fetchall()
    return [
        _Table(f"{schema}.{name}", bool(has), bool(not_null), tuple(keys))  # type: ignore[arg-type]
        for schema, name, has, not_null, keys in rows
    ]


@cache
def dbt_models_with_not_null_user_id() -> frozenset[str]:
    """The dbt models (``marts.<model>``) whose user_id column carries dbt's not_null test. dbt creates its tables
    with ``CREATE TABLE AS``, which declares no column NOT NULL; for these, ``dbt build`` fails on a NULL user_id
    before anything downstream reads the model."""
    models = resources.files("dbt_like_sql") / "models"
    found: set[str] = set()
    for folder in models.iterdir():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if not entry.name.endswith(".yml"):
                continue
            document = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
            for model in document.get("models", []):
                for column in model.get("columns", []):
                    tests = column.get("data_tests", []) or []
                    if column.get("name") == DISTRIBUTION_COLUMN and "not_null" in tests:
                        found.add(f"marts.{model['name']}")
    return frozenset(found)


def readiness_problems(
    conn: Connection,
    schemas: Sequence[str] = DISTRIBUTED_SCHEMAS,
    reference: Mapping[str, str] = REFERENCE_TABLES,
) -> list[str]:
    """What stops the tables of ``schemas`` from being distributed by user_id (or, for those in ``reference``, from
    being reference tables) on Citus, one sentence each; empty when nothing does."""
    problems: list[str] = []
    tables = _tables(conn, schemas)
    nullable_ok = dbt_models_with_not_null_user_id()
    for table in tables:
        if table.qualified in reference:
            continue
        if not table.has_user_id:
            problems.append(f"{table.qualified} has no user_id column and is not listed as a reference table")
            continue
        if not table.user_id_not_null and table.qualified not in nullable_ok:
            problems.append(f"{table.qualified}.user_id may be NULL (Citus refuses NULL in the distribution column)")
        for key in table.keys_without_user_id:
            problems.append(f"{table.qualified}: unique key {key} leaves out user_id")
    kinds = {t.qualified: "reference" if t.qualified in reference else "distributed" for t in tables}
    keys = conn.execute(_sql("distribution_foreign_keys").encode(), {"schemas": list(schemas)}).fetchall()
    for name, source, target, pairs_user_id in keys:
        kind = (kinds.get(str(source), "outside"), kinds.get(str(target), "outside"))
        if kind == ("distributed", "distributed"):
            if not pairs_user_id:
                problems.append(f"{source}: foreign key {name} to {target} does not pair user_id with user_id")
        elif kind not in _ALLOWED_REFERENCES:
            problems.append(
                f"{source}: foreign key {name} to {target} goes from {_KINDS[kind[0]]} to {_KINDS[kind[1]]}"
            )
    return problems


# Foreign keys Citus accepts apart from those between distributed tables (which must pair user_id): to a reference
# table from a distributed or reference table. A table outside the distributed schemas has no place on the cluster.
_ALLOWED_REFERENCES = {("distributed", "reference"), ("reference", "reference")}
_KINDS = {
    "distributed": "a distributed table",
    "reference": "a reference table",
    "outside": "a table outside the checked schemas",
}


class NotReadyError(RuntimeError):
    """The schema breaks a rule of Citus's distribution; the message lists what."""


def citus_statements(conn: Connection, schemas: Sequence[str] = DISTRIBUTED_SCHEMAS) -> list[str]:
    """The statements that make the tables of ``schemas`` reference or distributed tables on a Citus coordinator:
    reference tables first, then `COLOCATION_ANCHOR`, then every other table colocated with it."""
    problems = readiness_problems(conn, schemas)
    if problems:
        raise NotReadyError("the schema is not ready for Citus: " + "; ".join(problems))
    tables = [t.qualified for t in _tables(conn, schemas)]
    statements = [f"SELECT create_reference_table('{t}');" for t in tables if t in REFERENCE_TABLES]
    distributed = [t for t in tables if t not in REFERENCE_TABLES]
    if COLOCATION_ANCHOR in distributed:
        statements.append(f"SELECT create_distributed_table('{COLOCATION_ANCHOR}', '{DISTRIBUTION_COLUMN}');")
    statements += [
        f"SELECT create_distributed_table('{t}', '{DISTRIBUTION_COLUMN}', colocate_with => '{COLOCATION_ANCHOR}');"
        for t in distributed
        if t != COLOCATION_ANCHOR
    ]
    return statements
