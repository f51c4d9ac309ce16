"""The read API benchmark at a tiny size, so the tool cannot rot: its seeding writes the rows it says, and every
scenario, served by uvicorn in a child process as the benchmark serves it, answers 200 at the offered rate.
No timing is asserted."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from api.queries.read_state import authenticated
from benchmarks import api_read, loadgen
from benchmarks.api_read_seed import (
    ACTIVE_INSIGHTS_PER_USER,
    FIRST_DAY,
    PROFILES,
    Seeded,
    make_keys,
    seed,
    user_ids,
)
from pipeline.catalog import SLEEP_METRIC
from pipeline.infra.database import libpq_url
from pipeline.infra.migrations import migrate

USERS, DAYS, SLICES = 5, 10, 4


def test_seeding_and_every_scenario_at_a_tiny_size(make_database: Callable[[], URL]) -> None:
    url = make_database()
    migrate(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = seed(conn, USERS, DAYS, slices_per_night=SLICES)
        keys = make_keys(conn, user_ids(USERS))
        per_metric = dict(
            conn.execute("SELECT metric, count(*) FROM marts.daily GROUP BY metric").fetchall()  # type: ignore[arg-type]
        )
        per_user_weighings = {
            n for (n,) in conn.execute("SELECT count(*) FROM marts.daily WHERE metric = 'WEIGHT' GROUP BY user_id")
        }
        active = conn.execute("SELECT count(*) FROM marts.insights WHERE status = 'active'").fetchone()
        found = authenticated(conn, keys[3])
        assert found is not None and found.principal.user_id == user_ids(5)[3]

    user_days = USERS * DAYS
    episodes = DAYS // 5  # fewer than INSIGHTS_PER_USER in 10 days: one each 5 days
    assert rows == {
        "app.users": USERS,
        "marts.daily": sum(per_metric.values()),
        "core.sleep_sessions": user_days,
        "core.slices": user_days * (SLICES + 1),  # the watch's slices and the phone's losing copy of the first
        "marts.health_scores": user_days,
        "marts.insights": USERS * episodes,
        "app.ingest_batches": user_days,
        "core.partition_stats": user_days,
    }
    daily_every_day = [name for name, p in PROFILES.items() if p[3] == 1 and p[4] == 1] + [SLEEP_METRIC]
    assert {name: per_metric[name] for name in daily_every_day} == dict.fromkeys(daily_every_day, user_days)
    assert per_user_weighings <= {3, 4} and per_metric["WEIGHT"] >= USERS * 3  # every third day of ten
    assert active == (USERS * min(ACTIVE_INSIGHTS_PER_USER, episodes),)

    seeded = Seeded(user_ids(USERS), keys, FIRST_DAY, DAYS, rows)
    with api_read.served(url.render_as_string(hide_password=False), {}) as server:
        results = api_read.run_scenarios(server, seeded, api_read.SCENARIOS, 1.0, 20, 4, 2)
        answers = loadgen.fetch_all(server.host, server.port, [loadgen.get("/v1/me/summary", server.authority)], 1)
    assert answers[0].status == 401  # the served app is the API itself: its routes want a key

    by_name = {r["scenario"]: r for r in results}
    measured = ["bare", "summary", "aggregates", "cached", "bare capacity", "summary capacity"]
    assert set(measured) <= set(by_name)
    for name in measured:
        assert by_name[name]["statuses"] == {"200": by_name[name]["requests"]}, name
        assert by_name[name]["requests"] > 0
    for name in ("bare", "summary", "aggregates", "cached"):
        assert by_name[name]["requests"] == 20  # the open loop sends rate x seconds, every one answered
    if "skipped" not in by_name["revalidated"]:
        assert by_name["revalidated"]["statuses"] == {"304": 20}
    verdicts = api_read.verdicts(results, 20)
    assert verdicts["summary_p99_ratio"] == round(by_name["summary"]["p99_ms"] / api_read.P99_TARGET_MS, 3)


def test_a_compared_run_gives_each_scenarios_ratios_to_the_first() -> None:
    def result(name: str, p50: float, p99: float, rps: float) -> dict[str, object]:
        return {"scenario": name, "p50_ms": p50, "p99_ms": p99, "rps": rps}

    first = [result("summary", 4.0, 16.0, 300.0), result("bare", 1.0, 2.0, 300.0), {"scenario": "x", "skipped": "-"}]
    second = [result("summary", 5.0, 17.6, 240.0), result("bare capacity", 1.0, 1.0, 1.0), first[2]]
    assert api_read.ratios(first, second) == {"summary": {"p50": 1.25, "p99": 1.1, "rps": 0.8}}
