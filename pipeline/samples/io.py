"""Reading the inputs of a set of user-days and replacing their outputs atomically. COPY both ways."""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from pipeline.ingest.store import Connection, frame_to_csv


def sql(name: str) -> str:
    return (resources.files("pipeline.samples") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Inputs:
    raw: pd.DataFrame  # identity, user_id, metric, value, unit, stage, start_utc, end_utc, timezone, source_name,
    # device_class
    users: pd.DataFrame  # user_id, home_timezone
    history: pd.DataFrame  # user_id, valid_from, timezone
    orders: dict[str, list[str]]  # users' own source priority


def _copy_out(conn: Connection, query: str, params: dict[str, list[object]]) -> pd.DataFrame:
    buffer = io.BytesIO()
    with conn.cursor().copy(query.encode(), params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return (
        pd.read_csv(buffer, dtype_backend="pyarrow", engine="pyarrow") if buffer.getbuffer().nbytes else pd.DataFrame()
    )


def load_inputs(conn: Connection, user_days: pd.DataFrame) -> Inputs:
    span = user_days.groupby("user_id")["local_date"].agg(["min", "max"]).reset_index()
    params: dict[str, list[object]] = {
        "users": span["user_id"].tolist(),
        "first_days": span["min"].tolist(),
        "last_days": span["max"].tolist(),
    }
    raw = _copy_out(conn, sql("load_window"), params)
    columns = [
        "identity",
        "user_id",
        "metric",
        "value",
        "unit",
        "stage",
        "start_us",
        "end_us",
        "timezone",
        "source_name",
        "device_class",
    ]
    raw = raw.reindex(columns=columns)
    for column in ("start_us", "end_us"):  # integer microseconds: no timestamp text to parse
        raw[column.replace("_us", "_utc")] = pd.to_datetime(raw[column].astype("int64"), unit="us", utc=True)
    raw = raw.drop(columns=["start_us", "end_us"])
    for column in ("identity", "user_id", "metric", "unit", "stage", "timezone", "source_name", "device_class"):
        raw[column] = raw[column].astype("string")  # Arrow-backed: no Python object per value
    raw["value"] = raw["value"].astype("float64")
    users = pd.DataFrame(
        conn.execute(
            "SELECT user_id, home_timezone, source_priority FROM app.users WHERE user_id = ANY(%s)",
            (params["users"],),
        ).fetchall(),
        columns=["user_id", "home_timezone", "source_priority"],
    )
    history = pd.DataFrame(
        conn.execute(
            "SELECT user_id, valid_from, timezone FROM app.user_timezones WHERE user_id = ANY(%s)", (params["users"],)
        ).fetchall(),
        columns=["user_id", "valid_from", "timezone"],
    )
    orders = {u: list(p) for u, p in zip(users["user_id"], users["source_priority"], strict=True) if p}
    return Inputs(raw, users[["user_id", "home_timezone"]], history, orders)


def replace_partitions(conn: Connection, table: str, user_days: pd.DataFrame, rows: pd.DataFrame) -> None:
    """Delete the partitions' rows, then COPY the new ones. Call inside a transaction: all tables of an asset
    change together or not at all."""
    conn.execute(
        f"""DELETE FROM {table} t USING unnest(%s::text[], %s::date[]) AS p(user_id, local_date)
            WHERE t.user_id = p.user_id AND t.local_date = p.local_date""".encode(),
        (user_days["user_id"].tolist(), user_days["local_date"].tolist()),
    )
    if rows.empty:
        return
    columns = ", ".join(rows.columns)
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)".encode()) as copy:
        copy.write(frame_to_csv(rows, instants_as_micros=False))
