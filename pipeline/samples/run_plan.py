"""Which Dagster runs cover a set of user-days: rectangles of the user x day partition grid, one run each.

A run launched with the tags ``dagster/asset_partition_range_start`` and ``..._end`` set to two user x day keys covers
every partition between them in *both* dimensions: the users from the first to the last (in the user dimension's
order) x the days from the first to the last. Dagster's own asset-backfill daemon never builds such runs for a
two-dimensional partitioning (it makes one range per key of the dimension with fewer keys: a backfill of 50 users x 60
days becomes 50 runs), so the sensor, the CLI and the recompute request plan them here and launch them directly.

The user dimension's order is not alphabetical: a dynamic partitions definition lists its keys in the order they were
added (Dagster's ``dynamic_partitions`` table, ordered by id), and a range whose start comes after its end is silently
empty. So the planner takes the dimension's order as an input and only ever puts keys into one rectangle that are
contiguous in it; every rectangle carries the number of partitions it must expand to (``healthpipe/partitions``), which
the assets verify at run time.

Size: at most ``MAX_USER_DAYS_PER_RUN`` = 1,500 user-days per run, chosen by arithmetic, not measured as optimal.
Within a run the assets work in chunks of 500 user-days (``runner.py``: bounded memory, loading, computing and writing
overlapped), so a run is about three chunks. Each run has a fixed cost (a fresh process importing pandas, Dagster and
Great Expectations, Dagster's bookkeeping; estimated at ~20 s, see ``RUN_COST``) that 1,500 user-days (~2.4M samples
at the synthetic data's density) make small. The run queue starts two runs at once (``HEALTHPIPE_MAX_CONCURRENT_RUNS``,
default 2): 50 users x 60 days = 3,000 user-days become exactly two runs of 25 users x 60 days that start together,
with no second wave. Whether two runs side by side on two cores beat one run of 3,000 (which already overlaps the
database and Python) has not been measured; two runs halve what a killed or failed run has to redo, and use more
cores where the queue allows more runs. A cap of 1,000 would make four runs in two waves, each paying the fixed cost.
"""

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.samples.partitions import USER_SHARDS, partition_key, shard_of

MAX_USER_DAYS_PER_RUN = 1500
MAX_GROWTH = 2.0  # the rectangles may hold at most this many times the requested user-days
# The fixed cost of a run in user-days of work: the 50-run backfill of 3,200 user-days took ~28 s per run of 64
# user-days, whose work is ~5 s at the benchmark's ~0.07 s per user-day; the rest (a fresh process importing pandas,
# Dagster and Great Expectations, Dagster's bookkeeping) is ~20 s, ~300 user-days. Rounded down: widen a rectangle
# over unrequested user-days only when that saves a run and costs fewer than this many of them.
RUN_COST = 200.0
PARTITIONS_TAG = "healthpipe/partitions"  # how many partitions the run's range must expand to

Pair = tuple[str, dt.date]


@dataclass(frozen=True)
class Rectangle:
    """Consecutive keys of the user dimension (users, or shards) x consecutive days: one run."""

    keys: tuple[str, ...]
    first_day: dt.date
    last_day: dt.date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def partitions(self) -> int:
        return len(self.keys) * self.days

    def pairs(self) -> set[Pair]:
        return {(k, self.first_day + dt.timedelta(days=i)) for k in self.keys for i in range(self.days)}

    def tags(self) -> dict[str, str]:
        """The run tags that make one Dagster run cover exactly this rectangle."""
        return {
            ASSET_PARTITION_RANGE_START_TAG: str(partition_key(self.keys[0], self.first_day)),
            ASSET_PARTITION_RANGE_END_TAG: str(partition_key(self.keys[-1], self.last_day)),
            PARTITIONS_TAG: str(self.partitions),
        }

    def describe(self) -> str:
        users = self.keys[0] if len(self.keys) == 1 else f"{self.keys[0]}..{self.keys[-1]}"
        return f"{len(self.keys)} x {self.days} ({users}, {self.first_day}..{self.last_day})"


def dimension_pairs(user_days: Iterable[Pair], shards: int = USER_SHARDS) -> set[Pair]:
    """(user, day) -> (key of the user dimension, day): the user itself, or its shard."""
    return {(shard_of(u, shards) if shards else u, d) for u, d in user_days}


def shard_weights(users: Iterable[str], shards: int = USER_SHARDS) -> dict[str, int]:
    """Users per shard: a shard-day partition is that many user-days of work."""
    return dict(Counter(shard_of(u, shards) for u in users)) if shards else {}


def plan_runs(
    pairs: Iterable[Pair],
    order: Sequence[str],
    max_user_days: int = MAX_USER_DAYS_PER_RUN,
    max_growth: float = MAX_GROWTH,
    weights: Mapping[str, int] | None = None,
    run_cost: float = RUN_COST,
) -> list[Rectangle]:
    """Disjoint rectangles covering ``pairs`` (key of the user dimension, day), each one run.

    ``order`` is the user dimension's order (a rectangle holds keys contiguous in it). Keys are taken in that order
    and a rectangle is widened over user-days that were not asked for (the days between two requested spans, users
    in between that were not requested) when that saves runs: fewer extra user-days than ``run_cost`` per run
    saved, and never more than ``max_growth`` times the requested user-days in all. Time zones make users' day
    ranges differ by a day, and a user missing from the middle of the order should not split a batch in two; the
    extra partitions are recomputed from raw data, which changes nothing. Each rectangle holds at most
    ``max_user_days`` user-days (a key counts ``weights[key]`` user-days per day, default 1; a single key-day above
    the cap stays whole), split into near-equal parts, by users first (a user's days are loaded as one window), by
    days only when one user's row alone is too long.
    """
    days_of: dict[str, set[dt.date]] = {}
    for key, day in pairs:
        days_of.setdefault(key, set()).add(day)
    if not days_of:
        return []
    position = {key: i for i, key in enumerate(order)}
    unknown = sorted(set(days_of) - set(position))
    if unknown:
        raise ValueError(f"not in the user dimension: {', '.join(unknown[:5])}{'...' if len(unknown) > 5 else ''}")

    def weight(key: str) -> int:
        return max(1, weights.get(key, 1)) if weights else 1

    prefix = [0]  # prefix sums of weights along the order: the weight of any range of keys
    for key in order:
        prefix.append(prefix[-1] + weight(key))
    model = _Model(prefix, max_user_days, max_growth, run_cost)

    blocks: list[_Block] = []
    current: _Block | None = None
    for key in sorted(days_of, key=position.__getitem__):
        single = model.block(position[key], position[key], frozenset(days_of[key]), weight(key) * len(days_of[key]))
        if current is not None:
            merged = model.block(current.first, single.last, current.days | single.days, current.wanted + single.wanted)
            # on a tie (same work, same number of runs) merge: the split below then evens out the runs
            if merged.cost <= current.cost + single.cost and merged.area <= max_growth * merged.wanted:
                current = merged
                continue
            blocks.append(current)
        current = single
    assert current is not None
    blocks.append(current)

    rectangles: list[Rectangle] = []
    for block in blocks:
        keys = tuple(order[block.first : block.last + 1])
        for first_day, last_day in block.spans:
            rectangles.extend(_split(keys, first_day, last_day, max_user_days, weight))
    return sorted(rectangles, key=lambda r: (position[r.keys[0]], r.first_day))


@dataclass(frozen=True)
class _Block:
    """Keys ``order[first..last]`` x day spans covering the days requested for the keys among them."""

    first: int
    last: int
    days: frozenset[dt.date]
    wanted: int  # requested user-days (weighted)
    spans: tuple[tuple[dt.date, dt.date], ...]
    area: int  # user-days its rectangles hold (weighted)
    cost: float  # area + the fixed cost of the runs it will take


@dataclass(frozen=True)
class _Model:
    prefix: list[int]
    cap: int
    max_growth: float
    run_cost: float

    def runs(self, rows: int, days: int) -> int:
        return max(1, math.ceil(rows * days / self.cap))

    def block(self, first: int, last: int, days: frozenset[dt.date], wanted: int) -> _Block:
        rows = self.prefix[last + 1] - self.prefix[first]
        spans: list[tuple[dt.date, dt.date]] = []  # maximal runs of consecutive days, then bridged where it pays
        for day in sorted(days):
            if spans and day == spans[-1][1] + dt.timedelta(days=1):
                spans[-1] = (spans[-1][0], day)
            else:
                spans.append((day, day))
        area = rows * sum((b - a).days + 1 for a, b in spans)
        bridged = [spans[0]]
        for start, end in spans[1:]:
            before_start, before_end = bridged[-1]
            gap = (start - before_end).days - 1
            apart = self.runs(rows, (before_end - before_start).days + 1) + self.runs(rows, (end - start).days + 1)
            saved_runs = apart - self.runs(rows, (end - before_start).days + 1)
            if rows * gap < self.run_cost * saved_runs and area + rows * gap <= self.max_growth * wanted:
                area += rows * gap
                bridged[-1] = (before_start, end)
            else:
                bridged.append((start, end))
        cost = area + self.run_cost * sum(self.runs(rows, (b - a).days + 1) for a, b in bridged)
        return _Block(first, last, days, wanted, tuple(bridged), area, cost)


def _split(
    keys: tuple[str, ...], first_day: dt.date, last_day: dt.date, cap: int, weight: Callable[[str], int]
) -> list[Rectangle]:
    days = (last_day - first_day).days + 1
    heaviest = max(weight(k) for k in keys)
    day_parts = _balanced(days, math.ceil(days / max(1, cap // heaviest)))
    rectangles = []
    start = first_day
    for length in day_parts:
        end = start + dt.timedelta(days=length - 1)
        for group in _groups(keys, [weight(k) * length for k in keys], cap):
            rectangles.append(Rectangle(group, start, end))
        start = end + dt.timedelta(days=1)
    return rectangles


def _balanced(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive integers."""
    base, extra = divmod(total, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def _groups(keys: tuple[str, ...], sizes: list[int], cap: int) -> list[tuple[str, ...]]:
    """Consecutive groups of ``keys``, as few as the cap allows, then as even as possible: the smallest per-group
    limit that still needs no more groups than the cap does (binary search over the greedy packing)."""

    def pack(limit: int) -> list[tuple[str, ...]]:
        groups: list[tuple[str, ...]] = []
        current: list[str] = []
        total = 0
        for key, size in zip(keys, sizes, strict=True):
            if current and total + size > limit:
                groups.append(tuple(current))
                current, total = [], 0
            current.append(key)
            total += size
        groups.append(tuple(current))
        return groups

    limit = max(cap, max(sizes))
    fewest = len(pack(limit))
    low, high = max(sizes), limit
    while low < high:
        middle = (low + high) // 2
        if len(pack(middle)) <= fewest:
            high = middle
        else:
            low = middle + 1
    return pack(low)
