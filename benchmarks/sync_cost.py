"""A device sync's cost in process, without HTTP: where a request's fixed cost goes.

    .venv/bin/python -m benchmarks.sync_cost [--sizes 1,1000,10000] [--repeats 30,7,3] [--profile N]

On a scratch database, `sync_samples` lands valid bodies (the shape of `benchmarks.hostile_input`'s, each sample
new) of each size, parsed as the API parses them; prints the median and fastest time per request and, per size,
the median against the one-sample median (the floor). ``--profile N`` prints cProfile's cumulative figures of the
ingest modules for 20 requests of N samples instead. Nothing is recorded or asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections.abc import Sequence

from benchmarks.common import scratch_database
from benchmarks.hostile_input import DEVICE, USER, valid_body
from pipeline.accounts import create_user, register_device
from pipeline.infra.database import Connection, create_warehouse_engine, psycopg_connection
from pipeline.ingest.device_sync import MAX_SAMPLES_PER_REQUEST, RequestHash, sync_samples
from pipeline.ingest.sync_body import parse_sync_body


class Syncs:
    """Syncs of new samples to one device: each call lands ``samples`` samples no earlier call sent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.first = 0

    def __call__(self, samples: int) -> float:
        body = valid_body(samples, self.first)
        self.first += samples
        started = time.perf_counter()
        hasher = RequestHash(DEVICE)  # as the API does: hashed as the body is read
        parsed = parse_sync_body(body, MAX_SAMPLES_PER_REQUEST, hasher)
        outcome = sync_samples(self.conn, USER, DEVICE, parsed, None, None, hasher.hexdigest(parsed))
        seconds = time.perf_counter() - started
        if outcome.response["synced"] != samples:
            raise RuntimeError(f"{samples} new samples, {outcome.response['synced']} synced")
        return seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,1000,10000", help="samples per request; the first is the floor")
    parser.add_argument("--repeats", default="30,7,3", help="requests of each size")
    parser.add_argument("--profile", type=int, help="profile 20 requests of this many samples instead")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    repeats = [int(r) for r in args.repeats.split(",")]
    with scratch_database() as url:
        engine = create_warehouse_engine(url)
        with psycopg_connection(engine) as conn:
            create_user(conn, USER, "UTC")
            register_device(conn, USER, DEVICE, "phone", "Phone")
            sync = Syncs(conn)
            for _ in range(3):  # the first requests' one-off imports and plans
                sync(1)
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(20):
                    sync(args.profile)
                profile.disable()
                stats = pstats.Stats(profile).sort_stats("cumulative")
                stats.print_stats(r"(device_sync|store|landing|generic|sample_checks|sync_body)\.py")
                return
            floor = None
            for size, count in zip(sizes, repeats, strict=True):
                times = [sync(size) for _ in range(count)]
                median = statistics.median(times)
                floor = floor or median
                print(
                    f"{size:>6,} samples: median {median * 1000:8.1f} ms, fastest {min(times) * 1000:8.1f} ms, "
                    f"{median / floor:6.2f}x the {sizes[0]}-sample median",
                    flush=True,
                )
        engine.dispose()


if __name__ == "__main__":
    main()
