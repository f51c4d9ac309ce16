"""Hostile input: what bodies and files built to cost the server or the importer much more than their size cost.

    .venv/bin/python -m benchmarks.hostile_input [--body-mb 1,4,10] [--zip-mb 128,1024] [--fillers nul,a]
                                               [--import-timeout 300] [--memory-cap-mb 3000]

`benchmarks.report --only hostile` runs it and records what `main` returns in docs/benchmarks/history.jsonl.

The API runs as a real `uvicorn api.main:app` child process on a scratch database; its resident memory is sampled
with psutil every 10 ms, and each request's time is the client's wall time. Bodies, all to one registered device:

- amplification: 1,000 samples that are all rejected (unknown type), each with 10 keys no other sample has (~143 KB):
  a reader that makes a column per distinct key builds a 1,000 x 10,000 table from it;
- valid bodies of 1, 4 and 10 MB: the same sample shape (~1 KB of metadata each), 1,000 samples a MB; their
  marginal seconds per MB ((time - floor) / MB) should be within 1.5x of each other;
- over the limit: the valid shape with one sample more than the per-request maximum, which must be refused (and
  cheaply).

The floor of every body is measured in the same run, on the same warmed server just before the body: the median
of three one-sample syncs (authentication, the transaction, the batch row, the response), after a warm-up sync of
50 samples (the first use of each vectorized path is no part of a body), so a body's marginal
time is what its size costs.

The importer: a zip holding an export.xml that is `<HealthData>` followed by N bytes of padding (128 MB and 1 GB
inside; a few hundred KB compressed), once of NUL bytes (not XML: the reader stops at the first one) and once of a
text byte (``a``: one endless text node, so the reader's bound on one element's size is what is measured),
imported by `healthpipe import` in a child process, with a timeout and a memory cap (the child is killed above
either; the run reports "timed out" or "over the memory cap" rather than hang or take the machine's memory). Its
floor is `healthpipe import` of a tiny valid export (process start-up, the migration check, one record).

Targets: peak server memory under 300 MB for every body, marginal seconds per MB within 1.5x across sizes; per
padding, time at most linear in the size (marginal seconds per MB of the larger zip / of the smaller <= 1.5) and
flat memory (peak of the larger / of the smaller <= 1.5, every peak under 300 MB). Printed as ratios and
met/NOT met; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import scratch_database
from pipeline.accounts import create_api_key, create_user, register_device
from pipeline.infra.database import create_warehouse_engine, psycopg_connection
from pipeline.ingest.device_sync import MAX_SAMPLES_PER_REQUEST
from pipeline.synthetic.hostile import padded_export_zip

PEAK_TARGET_MB = 300
PER_MB_RATIO_TARGET = 1.5
ZIP_GROWTH_TARGET = 1.5  # larger zip / smaller: marginal seconds per MB, and peak memory
FLOOR_REPEATS = 3
FILLERS = {"nul": b"\0", "a": b"a", "space": b" "}
USER, DEVICE = "hostile", "phone-1"
MB = 1_000_000


class PeakRss:
    """Samples a process's resident memory (with its children's) in a thread; `peak()` since the last `reset()`."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self._peak = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        try:
            processes = [self.process, *self.process.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes)
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last = self._rss()
            self._peak = max(self._peak, self.last)
            time.sleep(self.interval)

    def reset(self) -> None:
        self.last = self._peak = self._rss()

    def peak_mb(self) -> float:
        return max(self._peak, self._rss()) / 2**20

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# -- bodies --------------------------------------------------------------------------------------------------------


def amplification_body(samples: int = 1_000, keys: int = 10) -> bytes:
    """Rejected samples (unknown type) whose keys are all distinct across the body."""
    body = [{f"key_{i:04d}{j}": 0 for j in range(keys - 1)} | {"type": f"X{i}"} for i in range(samples)]
    return json.dumps({"samples": body}, separators=(",", ":")).encode()


def valid_sample(number: int, metadata_bytes: int = 900) -> dict[str, Any]:
    """A valid step sample with about ``metadata_bytes`` of metadata, unique by its start minute."""
    minute = number % (60 * 24 * 300)
    day, rest = divmod(minute, 60 * 24)
    start = f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}T{rest // 60:02d}:{rest % 60:02d}:00Z"
    return {
        "type": "STEPS",
        "value": 10 + number % 90,
        "unit": "count",
        "startDate": start,
        "endDate": start.replace(":00Z", ":30Z"),
        "sourceApp": "Health",
        "metadata": {f"note{j}": "x" * 80 for j in range(metadata_bytes // 90)},
    }


def valid_body(samples: int, first: int = 0) -> bytes:
    body = [valid_sample(i) for i in range(first, first + samples)]
    return json.dumps({"samples": body}, separators=(",", ":")).encode()


# -- the server ----------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_api(database_url: str) -> Iterator[tuple[str, int]]:
    """``uvicorn api.main:app`` in a child process on the database; yields its URL and pid."""
    port = _free_port()
    env = os.environ | {"HEALTHPIPE_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
    child = subprocess.Popen([*command, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        yield url, child.pid
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def _sync(url: str, key: str, body: bytes, label: str | None) -> tuple[httpx.Response, float]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if label is not None:
        headers["Idempotency-Key"] = label
    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/me/devices/{DEVICE}/sync", content=body, headers=headers, timeout=600)
    return response, time.perf_counter() - started


WARM_UP_SAMPLES = 50


def floor_seconds(url: str, key: str, first: int) -> float:
    """The median time of `FLOOR_REPEATS` one-sample syncs (each a new sample, so each lands): a sync's fixed cost."""
    times = []
    for number in range(FLOOR_REPEATS):
        response, seconds = _sync(url, key, json.dumps({"samples": [valid_sample(first + number)]}).encode(), None)
        response.raise_for_status()
        times.append(seconds)
    return sorted(times)[len(times) // 2]


def post(url: str, key: str, body: bytes, label: str, rss: PeakRss, floor: float) -> dict[str, Any]:
    rss.reset()
    before_mb = rss.last / 2**20
    response, seconds = _sync(url, key, body, label)
    time.sleep(0.05)  # one more sample after the answer
    answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    body_mb = len(body) / MB
    figures = {
        "body_mb": round(body_mb, 3),
        "status": response.status_code,
        "seconds": round(seconds, 3),
        "seconds_per_mb": round(seconds / body_mb, 3),
        "floor_seconds": round(floor, 3),
        "marginal_seconds_per_mb": round((seconds - floor) / body_mb, 3),
        "rss_before_mb": round(before_mb, 1),
        "peak_rss_mb": round(rss.peak_mb(), 1),
    }
    if isinstance(answer, dict) and "synced" in answer:
        figures |= {key: answer[key] for key in ("synced", "duplicates", "errors")}
    print(
        f"{label}: {figures['body_mb']:,.3f} MB -> {response.status_code} in {seconds:.2f} s "
        f"({figures['seconds_per_mb']:.2f} s/MB; floor {floor:.3f} s, marginal "
        f"{figures['marginal_seconds_per_mb']:.2f} s/MB), server RSS {before_mb:,.0f} -> peak "
        f"{figures['peak_rss_mb']:,.0f} MB"
        + (
            f", synced {answer['synced']:,}, duplicates {answer['duplicates']:,}, errors {answer['errors']:,}"
            if "synced" in figures
            else ""
        ),
        flush=True,
    )
    return figures


def bodies(database_url: str, key: str, sizes_mb: Sequence[int]) -> dict[str, Any]:
    """Each body sent to a freshly started, warmed-up server (the peaks are each body's own: Python keeps what it
    allocated), right after that server's floor is measured."""
    cases = {"amplification": amplification_body()}
    first = 0
    for size in sizes_mb:
        cases[f"valid_{size}mb"] = valid_body(1_000 * size, first)
        first += 1_000 * size
    cases["over_limit"] = valid_body(MAX_SAMPLES_PER_REQUEST + 1, first)
    results: dict[str, Any] = {}
    for number, (label, body) in enumerate(cases.items()):
        with served_api(database_url) as (url, pid):
            # a small valid sync of a few samples first: the first request's one-off costs (imports, the first use of
            # each vectorized path) are no part of a body's cost
            warm_up = [valid_sample(10**6 + 1_000 * number + offset) for offset in range(WARM_UP_SAMPLES)]
            _sync(url, key, json.dumps({"samples": warm_up}).encode(), None)
            floor = floor_seconds(
                url, key, 10**6 + 1_000 * number + WARM_UP_SAMPLES
            )  # new samples: they land, as a body's do
            rss = PeakRss(pid)
            try:
                results[label] = post(url, key, body, label, rss, floor)
            finally:
                rss.stop()
    return results


# -- the importer --------------------------------------------------------------------------------------------------

TINY_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<HealthData locale="en_US">
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Phone" unit="count"
  creationDate="2024-01-01 10:05:00 +0000" startDate="2024-01-01 10:00:00 +0000"
  endDate="2024-01-01 10:01:00 +0000" value="12"/>
</HealthData>
"""


def tiny_export_zip(path: Path) -> Path:
    """A valid export of one record: importing it costs what every import costs (start-up, migration check)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("apple_health_export/export.xml", TINY_EXPORT)
    return path


def timed_import(database_url: str, path: Path, user: str, timeout: float, cap_mb: float) -> dict[str, Any]:
    """`healthpipe import` in a child, its RSS sampled every 50 ms; killed past ``timeout`` or ``cap_mb``."""
    env = os.environ | {"HEALTHPIPE_DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "users", "add", user], env=env, check=True, capture_output=True
    )
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "import", str(path), "--user", user],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rss = PeakRss(child.pid, interval=0.05)
    outcome = "finished"
    try:
        while child.poll() is None:
            if time.perf_counter() - started > timeout:
                outcome = "timed out"
            elif rss.peak_mb() > cap_mb:
                outcome = "over the memory cap"
            if outcome != "finished":
                child.kill()
                break
            time.sleep(0.05)
        output, _ = child.communicate()
    finally:
        rss.stop()
    seconds = time.perf_counter() - started
    lines = [line.strip() for line in output.splitlines() if line.strip() and "━" not in line]
    last_line = lines[-1] if lines else ""
    return {
        "outcome": outcome,
        "exit_code": child.returncode if outcome == "finished" else None,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(rss.peak_mb(), 1),
        "last_line": last_line[:200],
    }


def import_floor(database_url: str, timeout: float, cap_mb: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        figures = timed_import(database_url, tiny_export_zip(Path(tmp) / "tiny.zip"), "floor", timeout, cap_mb)
    print(
        f"import floor (a one-record export): exit {figures['exit_code']} after {figures['seconds']:.1f} s, "
        f"peak RSS {figures['peak_rss_mb']:,.0f} MB",
        flush=True,
    )
    return figures


def zips(
    database_url: str, sizes_mb: Sequence[int], fillers: Sequence[str], timeout: float, cap_mb: float, floor: float
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for filler in fillers:
            for size in sizes_mb:
                label = f"zip_{filler}_{size}mb"
                path = padded_export_zip(Path(tmp) / f"{label}.zip", size * MB, FILLERS[filler])
                figures = timed_import(database_url, path, label, timeout, cap_mb)
                figures |= {
                    "inner_mb": size,
                    "filler": filler,
                    "zip_kb": round(path.stat().st_size / 1000, 1),
                    "floor_ratio": round(figures["seconds"] / floor, 2),
                    "marginal_seconds_per_mb": round((figures["seconds"] - floor) / size, 4),
                }
                path.unlink()
                results[label] = figures
                print(
                    f"{label} ({figures['zip_kb']:,.0f} KB zipped, {size:,} MB of {filler!r} inside): "
                    f"{figures['outcome']}"
                    + (f", exit {figures['exit_code']}" if figures["exit_code"] is not None else "")
                    + f" after {figures['seconds']:.1f} s ({figures['floor_ratio']:.2f}x the floor), "
                    f"peak RSS {figures['peak_rss_mb']:,.0f} MB"
                    + (f"\n  {figures['last_line']}" if figures["last_line"] else ""),
                    flush=True,
                )
    return results


# -- verdicts ------------------------------------------------------------------------------------------------------


def verdicts(figures: dict[str, Any]) -> dict[str, Any]:
    """Ratios: a `*_ratio` below 1 is met."""
    bodies_ = figures.get("bodies", {})
    peaks = {label: b["peak_rss_mb"] for label, b in bodies_.items()}
    valid = [b for label, b in bodies_.items() if label.startswith("valid_")]
    result: dict[str, Any] = {
        "peak_rss_ratio": {label: round(peak / PEAK_TARGET_MB, 2) for label, peak in peaks.items()},
    }
    if len(valid) >= 2:
        raw = [b["seconds_per_mb"] for b in valid]
        result["raw_per_mb_spread"] = round(max(raw) / min(raw), 2)
        marginal = [max(b["marginal_seconds_per_mb"], 1e-6) for b in valid]
        spread = max(marginal) / min(marginal)
        result["per_mb_spread"] = round(spread, 2)
        result["per_mb_ratio"] = round(spread / PER_MB_RATIO_TARGET, 2)
    zips_ = figures.get("zips", {})
    for label, z in zips_.items():
        result[f"{label}_peak_ratio"] = round(z["peak_rss_mb"] / PEAK_TARGET_MB, 2)
    by_filler: dict[str, list[dict[str, Any]]] = {}
    for z in zips_.values():
        by_filler.setdefault(z["filler"], []).append(z)
    growth: dict[str, Any] = {}
    for filler, runs in by_filler.items():
        if len(runs) < 2:
            continue
        small, large = min(runs, key=lambda z: z["inner_mb"]), max(runs, key=lambda z: z["inner_mb"])
        time_growth = max(large["marginal_seconds_per_mb"], 0) / max(small["marginal_seconds_per_mb"], 1e-6)
        memory_growth = large["peak_rss_mb"] / small["peak_rss_mb"]
        growth[filler] = {
            "sizes_mb": [small["inner_mb"], large["inner_mb"]],
            "per_mb_growth": round(time_growth, 2),
            "per_mb_ratio": round(time_growth / ZIP_GROWTH_TARGET, 2),
            "peak_growth": round(memory_growth, 2),
            "peak_ratio": round(memory_growth / ZIP_GROWTH_TARGET, 2),
        }
    if growth:
        result["zip_growth"] = growth
    return result


def print_verdicts(result: dict[str, Any]) -> None:
    def met(ratio: float) -> str:
        return "met" if ratio <= 1 else "NOT met"

    print("\nratios (at most 1 is met):")
    for label, ratio in result["peak_rss_ratio"].items():
        print(f"  {label}: peak server RSS / {PEAK_TARGET_MB} MB = {ratio:.2f}  {met(ratio)}")
    if "per_mb_spread" in result:
        print(
            f"  marginal seconds per MB ((t - floor) / MB), slowest / fastest valid body = "
            f"{result['per_mb_spread']:.2f}; / {PER_MB_RATIO_TARGET} = {result['per_mb_ratio']:.2f}  "
            f"{met(result['per_mb_ratio'])} (raw seconds per MB: {result['raw_per_mb_spread']:.2f})"
        )
    for key, ratio in result.items():
        if key.startswith("zip_") and key.endswith("_peak_ratio"):
            print(f"  {key.removesuffix('_ratio')} / {PEAK_TARGET_MB} MB = {ratio:.2f}  {met(ratio)}")
    for filler, g in result.get("zip_growth", {}).items():
        small, large = g["sizes_mb"]
        print(
            f"  {filler!r} padding, {large:,} MB zip / {small:,} MB zip: marginal seconds per MB "
            f"x{g['per_mb_growth']:.2f} / {ZIP_GROWTH_TARGET} = {g['per_mb_ratio']:.2f}  {met(g['per_mb_ratio'])}; "
            f"peak memory "
            f"x{g['peak_growth']:.2f} / {ZIP_GROWTH_TARGET} = {g['peak_ratio']:.2f}  {met(g['peak_ratio'])}"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its results and return them: per body and per zip its figures, the floors, and the
    verdicts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--body-mb", default="1,4,10", help="valid body sizes in MB (1,000 samples a MB)")
    parser.add_argument("--zip-mb", default="128,1024", help="padding inside the zip, in MB ('' for none)")
    parser.add_argument("--fillers", default="nul,a", help=f"padding bytes of the zips, of {', '.join(FILLERS)}")
    parser.add_argument("--import-timeout", type=float, default=300, help="seconds before an import is killed")
    parser.add_argument("--memory-cap-mb", type=float, default=3000, help="RSS at which an import is killed")
    args = parser.parse_args(argv)
    body_sizes = [int(s) for s in args.body_mb.split(",") if s]
    zip_sizes = [int(s) for s in args.zip_mb.split(",") if s]
    fillers = [f for f in args.fillers.split(",") if f]
    unknown = set(fillers) - set(FILLERS)
    if unknown:
        parser.error(f"unknown fillers {sorted(unknown)}")
    figures: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 2)}
    with scratch_database() as url:
        rendered = url.render_as_string(hide_password=False)
        engine = create_warehouse_engine(url)
        with psycopg_connection(engine) as conn:
            create_user(conn, USER, "UTC")
            register_device(conn, USER, DEVICE, "phone", "Phone")
            key = create_api_key(conn, USER, False)
        engine.dispose()
        figures["bodies"] = bodies(rendered, key, body_sizes)
        if zip_sizes and fillers:
            floor = import_floor(rendered, args.import_timeout, args.memory_cap_mb)
            figures["import_floor"] = floor
            figures["zips"] = zips(
                rendered, zip_sizes, fillers, args.import_timeout, args.memory_cap_mb, float(floor["seconds"])
            )
    figures["load_after"] = round(os.getloadavg()[0], 2)
    figures["verdicts"] = verdicts(figures)
    print_verdicts(figures["verdicts"])
    return figures


if __name__ == "__main__":
    main()
