"""The read API under load: requests/s and p50/p99 latency of the summary and the aggregates (a year of days) on
1,000 users x 1 year of daily data, of a cached read, and of a bare JSON route as the floor, all in the same run.

    .venv/bin/python -m benchmarks.api_read [--users 1000] [--days 365] [--seconds 10] [--rate 300]
                                            [--scenarios bare,summary,aggregates,cached,revalidated,capacity]
                                            [--env HEALTHPIPE_NAME=value ...] [--compare HEALTHPIPE_NAME=value ...]
                                            [--rounds 1]
                                            [--concurrency 16] [--workers 1] [--fresh] [--drop]

The warehouse (benchmarks/api_read_seed.py) is kept between runs as the database ``bench_api_read`` beside the
configured one and seeded again only when its sizes or the schema change (``--fresh`` forces it, ``--drop`` drops it
at the end). The app is served as in production: ``uvicorn`` in a child process with the h11 protocol and head limit
of ``healthpipe up`` (``pipeline.stack.api_server_command``), serving ``benchmarks.api_read_app:app``: the
production app plus ``GET /bench/bare``. ``--env`` passes settings to that server only (e.g. a cache, an audit log
on or off); ``--compare NAME=value`` runs every scenario a second time, on a server with that setting too, and
prints the second run's p50, p99 and requests/s over the first's: what the setting costs, measured in one run
(``--rounds N``: N pairs of runs, which server goes first alternating, and the median of their ratios). The
load generator (benchmarks/loadgen.py) runs in this process; its CPU time per request is printed beside the
server's.

Scenarios, each ``--seconds`` long, each request with a random user's key:
- open loop at ``--rate`` requests/s: ``bare``; ``summary`` (a random day of the year); ``aggregates`` (period day,
  the whole year, one to three random types); ``cached`` (each user's one summary URL, asked once before the clock
  starts, then repeated: what a response cache serves); ``revalidated`` (the same with the ETag the priming answer
  carried in ``If-None-Match``: 304s; skipped when the API sends no ETag);
- ``capacity``: closed loop, ``--concurrency`` connections back to back, bare then summary: the most each answers.
Before the first scenario every key makes one summary request (their ``last_used_at`` is written then, as for a
key in daily use) and the bare route is asked for a second.
Targets (printed as ratios, never asserted): p99 under 20 ms at 300 requests/s; the summary's capacity at least
half the bare route's; a cached read's p50 under 2 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks import loadgen
from benchmarks.api_read_app import BARE_PATH
from benchmarks.api_read_seed import Seeded, seeded_database
from pipeline.infra.settings import Settings
from pipeline.stack import api_server_command

P99_TARGET_MS = 20.0
RATE_TARGET = 300.0
CAPACITY_RATIO_TARGET = 0.5
CACHED_P50_TARGET_MS = 2.0
SCENARIOS = ("bare", "summary", "aggregates", "cached", "revalidated", "capacity")
HOST = "127.0.0.1"


# -- the server ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    pid: int

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time of the server and its children (the workers, with ``--workers`` above 1) so far."""
        try:
            process = psutil.Process(self.pid)
            total = 0.0
            for each in [process, *process.children(recursive=True)]:
                times = each.cpu_times()
                total += times.user + times.system
            return total
        except psutil.Error:
            return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def server_command(port: int, workers: int) -> list[str]:
    """``healthpipe up``'s command line for the API, serving the benchmark's app on ``port``."""
    command = api_server_command(Settings(api_host=HOST, api_port=port))
    command[command.index("api.main:app")] = "benchmarks.api_read_app:app"
    return command + (["--workers", str(workers)] if workers > 1 else [])


@contextlib.contextmanager
def served(database_url: str, env: dict[str, str], workers: int = 1, timeout: float = 60) -> Iterator[Server]:
    """The benchmark app under uvicorn in a child process on ``database_url``, its log in a temporary file (printed
    if it fails to start)."""
    port = _free_port()
    environment = os.environ | {"HEALTHPIPE_DATABASE_URL": database_url} | env
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(server_command(port, workers), env=environment, stdout=log, stderr=log)
        server = Server(HOST, port, child.pid)
        try:
            deadline = time.monotonic() + timeout
            probe = [loadgen.get(BARE_PATH, server.authority)]
            while loadgen.fetch_all(HOST, port, probe, 1)[0].status != 200:
                if child.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError("the API did not start:\n" + log.read().decode(errors="replace")[-3000:])
                time.sleep(0.1)
            yield server
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


# -- the requests ---------------------------------------------------------------------------------------------------


class Requests:
    """Request bytes for each scenario, made before any clock starts; random users, days and types (seeded)."""

    def __init__(self, seeded: Seeded, authority: str, seed: int = 14) -> None:
        self.seeded, self.authority = seeded, authority
        self.random = random.Random(seed)  # noqa: S311  (which users and days: no secret)

    def _auth(self, i: int, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seeded.keys[i]}"} | (extra or {})

    def _user(self) -> int:
        return self.random.randrange(len(self.seeded.users))

    def _day(self) -> dt.date:
        return self.seeded.first_day + dt.timedelta(days=self.random.randrange(self.seeded.days))

    def bare(self, count: int) -> list[bytes]:
        return [loadgen.get(BARE_PATH, self.authority, self._auth(self._user())) for _ in range(count)]

    def summary_url(self, day: dt.date) -> str:
        return f"/v1/me/summary?date={day.isoformat()}"

    def summary(self, count: int) -> list[bytes]:
        return [
            loadgen.get(self.summary_url(self._day()), self.authority, self._auth(self._user())) for _ in range(count)
        ]

    def aggregates(self, count: int) -> list[bytes]:
        first, last = self.seeded.first_day.isoformat(), self.seeded.last_day.isoformat()
        out = []
        for _ in range(count):
            types = ",".join(self.random.sample(self.seeded.metrics, self.random.randint(1, 3)))
            url = f"/v1/me/aggregates?types={types}&period=day&start={first}&end={last}"
            out.append(loadgen.get(url, self.authority, self._auth(self._user())))
        return out

    def every_user_once(self) -> list[bytes]:
        """One summary request per user (a fixed random day each), in the users' order."""
        return [
            loadgen.get(self.summary_url(self._day()), self.authority, self._auth(i))
            for i in range(len(self.seeded.users))
        ]

    def repeated(self, per_user: list[bytes], count: int) -> list[bytes]:
        """``count`` requests drawn at random from ``per_user``."""
        return [per_user[self.random.randrange(len(per_user))] for _ in range(count)]

    def revalidating(self, per_user: list[bytes], etags: list[str | None]) -> list[bytes]:
        """``per_user`` with each user's ETag in If-None-Match."""
        return [
            request.replace(b"\r\n\r\n", f"\r\nIf-None-Match: {etag}\r\n\r\n".encode("latin-1"))
            for request, etag in zip(per_user, etags, strict=True)
            if etag
        ]


# -- measuring -------------------------------------------------------------------------------------------------------


def figures(name: str, mode: str, run: loadgen.Run, server_cpu: float, offered: float | None) -> dict[str, Any]:
    """One scenario's figures, rounded for the record."""

    def r(value: float | None, digits: int = 2) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "scenario": name,
        "mode": mode,
        "offered_rps": offered,
        "rps": r(run.rps, 1),
        "requests": run.completed,
        "p50_ms": r(run.percentile_ms(50)),
        "p99_ms": r(run.percentile_ms(99)),
        "max_ms": r(run.percentile_ms(100)),
        "lag_p99_ms": r(run.lag_ms(99)),
        "not_answered": int(run.extra.get("unsent", 0) + run.extra.get("unanswered", 0)),
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "client_cpu_us": r(run.client_cpu_us_per_request, 0),
        "client_core_share": r(run.client_cpu_seconds / run.seconds if run.seconds else None),
        "server_cpu_us": r(server_cpu / run.completed * 1e6 if run.completed else None, 0),
    }


def measure_open(server: Server, name: str, payloads: list[bytes], rate: float, seconds: float, conns: int) -> Any:
    before = server.cpu_seconds()
    run = loadgen.open_loop(server.host, server.port, payloads, rate, seconds, conns)
    return figures(name, "open", run, server.cpu_seconds() - before, rate)


def measure_closed(server: Server, name: str, payloads: list[bytes], seconds: float, conns: int) -> Any:
    before = server.cpu_seconds()
    run = loadgen.closed_loop(server.host, server.port, payloads, seconds, conns)
    return figures(name, "closed", run, server.cpu_seconds() - before, None)


def ok_share(result: dict[str, Any], ok: tuple[str, ...] = ("200",)) -> float:
    total = sum(result["statuses"].values())
    return sum(result["statuses"].get(s, 0) for s in ok) / total if total else 0.0


def run_scenarios(
    server: Server,
    seeded: Seeded,
    scenarios: Sequence[str],
    seconds: float,
    rate: float,
    connections: int,
    concurrency: int,
    closed_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Warm up, then each scenario in turn; the figures of each (a skipped one says why)."""
    requests = Requests(seeded, server.authority)
    count = max(1, int(rate * seconds))
    closed_seconds = closed_seconds or seconds
    warm_up = requests.every_user_once()
    loadgen.fetch_all(server.host, server.port, warm_up, concurrency)
    loadgen.closed_loop(server.host, server.port, requests.bare(1000), min(1.0, seconds), concurrency)
    results: list[dict[str, Any]] = []

    def say(result: dict[str, Any]) -> None:
        results.append(result)
        print(f"  {result['scenario']}: {_line(result)}", flush=True)

    if "bare" in scenarios:
        say(measure_open(server, "bare", requests.bare(count), rate, seconds, connections))
    if "summary" in scenarios:
        say(measure_open(server, "summary", requests.summary(count), rate, seconds, connections))
    if "aggregates" in scenarios:
        say(measure_open(server, "aggregates", requests.aggregates(count), rate, seconds, connections))
    if "cached" in scenarios or "revalidated" in scenarios:
        per_user = requests.every_user_once()
        answers = loadgen.fetch_all(server.host, server.port, per_user, concurrency)  # primes the cache
        if "cached" in scenarios:
            say(measure_open(server, "cached", requests.repeated(per_user, count), rate, seconds, connections))
        if "revalidated" in scenarios:
            conditional = requests.revalidating(per_user, [a.etag for a in answers])
            if conditional:
                payloads = requests.repeated(conditional, count)
                say(measure_open(server, "revalidated", payloads, rate, seconds, connections))
            else:
                results.append({"scenario": "revalidated", "skipped": "the summary answers carry no ETag"})
                print("  revalidated: skipped, the summary answers carry no ETag", flush=True)
    if "capacity" in scenarios:
        pool = max(count, 5000)
        say(measure_closed(server, "bare capacity", requests.bare(pool), closed_seconds, concurrency))
        say(measure_closed(server, "summary capacity", requests.summary(pool), closed_seconds, concurrency))
    return results


def _line(result: dict[str, Any]) -> str:
    statuses = ", ".join(f"{k}: {v:,}" for k, v in result["statuses"].items())
    if result.get("not_answered"):
        statuses += f", not answered in time: {result['not_answered']:,}"
    return (
        f"{result['rps']:,.0f} requests/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms ({statuses}); "
        f"client {result['client_cpu_us']} us/request ({result['client_core_share']:.0%} of a core), "
        f"server {result['server_cpu_us']} us/request"
    )


# -- verdicts and the table ------------------------------------------------------------------------------------------


def verdicts(results: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """The targets as ratios (<= 1: met): p99 / 20 ms at the rate (and the rate reached), summary capacity / half
    the bare route's, cached p50 / 2 ms."""
    by = {r["scenario"]: r for r in results if "skipped" not in r}
    out: dict[str, Any] = {}
    for name in ("summary", "aggregates", "cached", "revalidated", "bare"):
        if name in by and by[name]["p99_ms"] is not None:
            out[f"{name}_p99_ratio"] = round(by[name]["p99_ms"] / P99_TARGET_MS, 3)
            out[f"{name}_rate_reached"] = round(by[name]["rps"] / rate, 3)
    bare, summary = by.get("bare capacity"), by.get("summary capacity")
    if bare and summary and bare["rps"]:
        out["summary_capacity_share"] = round(summary["rps"] / bare["rps"], 3)
        out["summary_capacity_ratio"] = round(CAPACITY_RATIO_TARGET / out["summary_capacity_share"], 3)
    for name in ("cached", "revalidated"):
        if name in by and by[name]["p50_ms"] is not None:
            out[f"{name}_p50_ratio"] = round(by[name]["p50_ms"] / CACHED_P50_TARGET_MS, 3)
    return out


def median_ratios(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per scenario and figure, the median of the rounds' ratios: one round's ratio moves by tens of percent with
    what else the machine does (a server started second often runs slower), the median of alternating rounds less."""
    out: dict[str, dict[str, float]] = {}
    for scenario in rounds[0]:
        per = [r[scenario] for r in rounds if scenario in r]
        out[scenario] = {k: round(statistics.median(r[k] for r in per), 3) for k in per[0]}
    return out


def ratios(base: list[dict[str, Any]], other: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per scenario run both times, the second run's p50, p99 and requests/s over the first's."""
    first = {r["scenario"]: r for r in base if "skipped" not in r}
    out = {}
    for r in other:
        was = first.get(r["scenario"])
        if "skipped" in r or not was or not was["p50_ms"] or not was["p99_ms"] or not was["rps"]:
            continue
        out[r["scenario"]] = {
            "p50": round(r["p50_ms"] / was["p50_ms"], 3),
            "p99": round(r["p99_ms"] / was["p99_ms"], 3),
            "rps": round(r["rps"] / was["rps"], 3),
        }
    return out


def table(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'scenario':<18} {'mode':<6} {'offered/s':>9} {'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'lag p99':>7} {'failed':>6} {'client us':>9} {'server us':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if "skipped" in r:
            lines.append(f"{r['scenario']:<18} skipped: {r['skipped']}")
            continue
        bad = sum(v for k, v in r["statuses"].items() if k not in ("200", "304")) + r.get("not_answered", 0)
        lines.append(
            f"{r['scenario']:<18} {r['mode']:<6} {r['offered_rps'] or '':>9} {r['rps']:>10,.1f} {r['p50_ms']:>7} "
            f"{r['p99_ms']:>7} {r['lag_p99_ms'] if r['lag_p99_ms'] is not None else '':>7} {bad:>6} "
            f"{r['client_cpu_us']:>9} {r['server_cpu_us']:>9}"
        )
    return "\n".join(lines)


def print_verdicts(v: dict[str, Any], rate: float) -> None:
    def met(ratio: float) -> str:
        return "met" if ratio <= 1 else "NOT met"

    for name in ("summary", "aggregates", "cached", "revalidated"):
        if f"{name}_p99_ratio" in v:
            reached = v[f"{name}_rate_reached"]
            print(
                f"  {name}: p99 / {P99_TARGET_MS:.0f} ms = {v[f'{name}_p99_ratio']:.2f}  {met(v[f'{name}_p99_ratio'])}"
                f"; {reached:.0%} of {rate:.0f} requests/s reached"
                + ("" if reached >= 0.98 else "  (rate NOT reached)")
            )
    if "summary_capacity_share" in v:
        print(
            f"  summary capacity / bare capacity = {v['summary_capacity_share']:.2f}; "
            f"{CAPACITY_RATIO_TARGET} / that = {v['summary_capacity_ratio']:.2f}  {met(v['summary_capacity_ratio'])}"
        )
    for name in ("cached", "revalidated"):
        if f"{name}_p50_ratio" in v:
            print(
                f"  {name}: p50 / {CACHED_P50_TARGET_MS:.0f} ms = {v[f'{name}_p50_ratio']:.2f}  "
                f"{met(v[f'{name}_p50_ratio'])}"
            )


# -- main --------------------------------------------------------------------------------------------------------------


def _env(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env takes NAME=value, not {pair!r}")
        out[name] = value
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and the verdicts, and return every figure."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000, help="users seeded (one key each)")
    parser.add_argument("--days", type=int, default=365, help="days of daily data per user, from 2025-01-01")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per scenario")
    parser.add_argument("--rate", type=float, default=RATE_TARGET, help="requests/s of the open-loop scenarios")
    parser.add_argument("--connections", type=int, default=32, help="connections of the open loop (at most)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the closed loop")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"of {', '.join(SCENARIOS)}")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the server (repeatable)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        help="NAME=value (repeatable): run the scenarios again with these set too, and print the ratios",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --compare: rounds of both servers, which goes first alternating; the ratios' median is printed",
    )
    parser.add_argument("--slices-per-night", type=int, default=8, help="sleep stage slices per night")
    parser.add_argument("--fresh", action="store_true", help="seed again even if the warehouse holds these sizes")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark warehouse at the end")
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    server_env, compare_env = _env(args.env), _env(args.compare)
    out: dict[str, Any] = {
        "users": args.users,
        "days": args.days,
        "seconds": args.seconds,
        "rate": args.rate,
        "workers": args.workers,
        "load_before": round(os.getloadavg()[0], 2),
    }
    if server_env:
        out["server_env"] = server_env
    started = time.perf_counter()
    with seeded_database(args.users, args.days, args.slices_per_night, args.fresh, keep=not args.drop) as (
        url,
        seeded,
        seed_seconds,
    ):
        out["rows"] = seeded.rows
        out["seed_seconds"] = None if seed_seconds is None else round(seed_seconds, 1)
        print(
            f"warehouse: {args.users:,} users x {args.days} days, "
            + ", ".join(f"{table} {n:,}" for table, n in seeded.rows.items())
            + (f"; seeded in {seed_seconds:.1f} s" if seed_seconds is not None else "; reused"),
            flush=True,
        )
        rendered = url.render_as_string(hide_password=False)
        with served(rendered, server_env, args.workers) as server:
            results = run_scenarios(
                server, seeded, scenarios, args.seconds, args.rate, args.connections, args.concurrency
            )
        if compare_env:
            print(f"again, the server with {', '.join(compare_env)} set:", flush=True)
            with served(rendered, server_env | compare_env, args.workers) as server:
                compared = run_scenarios(
                    server, seeded, scenarios, args.seconds, args.rate, args.connections, args.concurrency
                )
            rounds = [ratios(results, compared)]
            for number in range(1, args.rounds):
                pair: dict[bool, list[dict[str, Any]]] = {}
                for with_setting in (True, False) if number % 2 else (False, True):
                    print(f"round {number + 1}: the server {'with' if with_setting else 'without'} it", flush=True)
                    env = server_env | compare_env if with_setting else server_env
                    with served(rendered, env, args.workers) as server:
                        pair[with_setting] = run_scenarios(
                            server, seeded, scenarios, args.seconds, args.rate, args.connections, args.concurrency
                        )
                rounds.append(ratios(pair[False], pair[True]))
            out["compared"] = {
                "env": compare_env,
                "scenarios": compared,
                "ratios": median_ratios(rounds),
                "rounds": rounds,
            }
    out["scenarios"] = results
    out["verdicts"] = verdicts(results, args.rate)
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["total_seconds"] = round(time.perf_counter() - started, 1)
    print()
    print(table(results))
    print()
    print_verdicts(out["verdicts"], args.rate)
    if "compared" in out:
        print(f"\nwith {', '.join(compare_env)}:")
        print(table(out["compared"]["scenarios"]))
        print()
        rounds_run = len(out["compared"]["rounds"])
        if rounds_run > 1:
            print(f"  (ratios: the median of {rounds_run} rounds, which server went first alternating)")
        for name, r in out["compared"]["ratios"].items():
            print(f"  {name}: p50 x{r['p50']:.2f}, p99 x{r['p99']:.2f}, requests/s x{r['rps']:.2f}")
    print(f"  load average {out['load_before']} -> {out['load_after']}; {out['total_seconds']} s in all")
    return out


if __name__ == "__main__":
    main()
