"""Planning runs over user x day rectangles: hand-checked cases, Dagster's own expansion of the range tags, and
invariants over random request sets."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from dagster import DagsterInstance, PartitionKeyRange
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline.samples.partitions import USERS_PARTITION, user_day_partitions
from pipeline.samples.run_plan import PARTITIONS_TAG, Rectangle, dimension_pairs, plan_runs, shard_weights

DAY0 = dt.date(2024, 3, 1)


def day(i: int) -> dt.date:
    return DAY0 + dt.timedelta(days=i)


def grid(users: list[str], days: range) -> set[tuple[str, dt.date]]:
    return {(u, day(i)) for u in users for i in days}


def covered(rectangles: list[Rectangle]) -> set[tuple[str, dt.date]]:
    pairs: set[tuple[str, dt.date]] = set()
    for rectangle in rectangles:
        assert not pairs & rectangle.pairs(), "rectangles overlap"
        pairs |= rectangle.pairs()
    return pairs


USERS = [f"u{i:04d}" for i in range(1, 51)]


def test_50_users_x_60_days_is_two_runs_of_25_users() -> None:
    pairs = grid(USERS, range(60))
    runs = plan_runs(pairs, USERS)
    assert [(r.keys[0], r.keys[-1], r.first_day, r.last_day) for r in runs] == [
        ("u0001", "u0025", day(0), day(59)),
        ("u0026", "u0050", day(0), day(59)),
    ]
    assert [r.partitions for r in runs] == [1500, 1500]
    assert covered(runs) == pairs


@pytest.mark.parametrize(
    ("cap", "users_per_run"),
    [(3000, [50]), (1000, [13, 13, 13, 11]), (600, [10, 10, 10, 10, 10]), (120, [2] * 25)],
)
def test_the_cap_splits_users_into_near_equal_runs(cap: int, users_per_run: list[int]) -> None:
    pairs = grid(USERS, range(60))
    runs = plan_runs(pairs, USERS, max_user_days=cap)
    assert [len(r.keys) for r in runs] == users_per_run
    assert covered(runs) == pairs
    assert all(r.partitions <= cap for r in runs)


def test_a_cap_below_one_users_row_splits_days_too() -> None:
    pairs = grid(USERS[:3], range(60))
    runs = plan_runs(pairs, USERS[:3], max_user_days=59)  # 60 days do not fit: two halves of 30 days per user
    assert [(r.keys, r.first_day, r.last_day) for r in runs] == [
        ((u,), first, last) for u in USERS[:3] for first, last in ((day(0), day(29)), (day(30), day(59)))
    ]


def test_one_users_long_history_is_split_by_days() -> None:
    pairs = {("a", day(i)) for i in range(3001)}
    runs = plan_runs(pairs, ["a"])
    assert [(r.first_day, r.last_day) for r in runs] == [
        (day(0), day(1000)),
        (day(1001), day(2000)),
        (day(2001), day(3000)),
    ]
    assert covered(runs) == pairs


def test_users_whose_days_differ_by_time_zone_share_one_rectangle() -> None:
    ragged = {("a", day(0)), ("a", day(1)), ("b", day(1)), ("b", day(2))}
    (run,) = plan_runs(ragged, ["a", "b"])
    assert (run.keys, run.first_day, run.last_day) == (("a", "b"), day(0), day(2))  # 6 user-days for 4 asked


def test_a_days_batch_of_50_users_in_several_zones_is_one_run() -> None:
    # each user's new samples touch their local day and the days either side; zones shift that by a day
    pairs = {(u, day(i + n % 2)) for n, u in enumerate(USERS) for i in range(3)}
    (run,) = plan_runs(pairs, USERS)
    assert (len(run.keys), run.first_day, run.last_day) == (50, day(0), day(3))


def test_far_apart_days_are_not_widened() -> None:
    far_apart = {("a", day(0)), ("b", day(184))}
    runs = plan_runs(far_apart, ["a", "b"])
    assert covered(runs) == far_apart  # 2 users x 185 days would be 185x the work
    gaps = {("a", day(0)), ("a", day(100)), ("b", day(0)), ("b", day(100))}
    runs = plan_runs(gaps, ["a", "b"])
    assert [(r.keys, r.first_day) for r in runs] == [(("a", "b"), day(0)), (("a", "b"), day(100))]
    assert covered(runs) == gaps


def test_a_missing_day_is_bridged_when_cheap() -> None:
    pairs = {("a", day(i)) for i in (0, 1, 2, 4, 5, 6)}
    (run,) = plan_runs(pairs, ["a"])
    assert (run.first_day, run.last_day) == (day(0), day(6))


def test_rectangles_follow_the_dimension_order_not_the_alphabet() -> None:
    order = ["c", "a", "b"]  # the order users were added to the dynamic partitions
    pairs = grid(["c", "b"], range(3))
    (run,) = plan_runs(pairs, order)  # 3 x 3 for 6 asked: the user in between ("a") is cheap to include
    assert run.keys == ("c", "a", "b")
    pairs = grid(["a", "z"], range(2))
    runs = plan_runs(pairs, ["a", "w", "x", "y", "z"])  # 5 x 2 for 4 asked: too much; two runs
    assert [r.keys for r in runs] == [("a",), ("z",)]
    with pytest.raises(ValueError, match="not in the user dimension: q"):
        plan_runs({("q", day(0))}, order)


def test_dagster_expands_the_range_tags_to_exactly_the_rectangles() -> None:
    """The tags go through Dagster's own range expansion over a dynamic dimension whose users were added in a
    shuffled order (as the sensor adds them over time)."""
    order = USERS[:]
    random.Random(4).shuffle(order)  # noqa: S311 (test data)
    wanted = grid(order[:20], range(10, 40)) | grid(order[20:], range(0, 60))
    runs = plan_runs(wanted, order)
    assert [(len(r.keys), r.days) for r in runs] == [(20, 30), (15, 60), (15, 60)]  # 2,400 user-days, no widening
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(USERS_PARTITION, order)
        expanded: set[tuple[str, dt.date]] = set()
        for run in runs:
            tags = run.tags()
            keys = user_day_partitions.get_partition_keys_in_range(
                PartitionKeyRange(tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]),
                dynamic_partitions_store=instance,
            )
            assert len(keys) == int(tags[PARTITIONS_TAG]) == run.partitions
            pairs = {(k.keys_by_dimension["user"], dt.date.fromisoformat(k.keys_by_dimension["day"])) for k in keys}
            assert pairs == run.pairs()
            assert not expanded & pairs
            expanded |= pairs
    assert expanded == wanted
    # interleaved in the dimension's order, the short and the long users cannot be separated: one 50 x 60 grid
    mixed = grid(USERS[0::2], range(10, 40)) | grid(USERS[1::2], range(0, 60))
    runs = plan_runs(mixed, USERS)
    assert [(len(r.keys), r.days) for r in runs] == [(25, 60), (25, 60)]


def test_shards_count_their_users() -> None:
    users = [f"user-{i}" for i in range(3000)]
    weights = shard_weights(users, shards=4)
    assert sum(weights.values()) == 3000 and len(weights) == 4
    order = [f"shard-{i:03d}" for i in range(4)]
    pairs = dimension_pairs({(u, day(0)) for u in users}, shards=4)
    assert pairs == {(shard, day(0)) for shard in order}
    runs = plan_runs(pairs, order, weights={shard: 700 for shard in order})  # 700 user-days a shard-day
    assert [r.keys for r in runs] == [tuple(order[:2]), tuple(order[2:])]
    heavy = plan_runs({("shard-000", day(0))}, order, weights={"shard-000": 5000})
    assert [r.keys for r in heavy] == [("shard-000",)]  # a single shard-day above the cap stays whole


def test_random_requests_are_covered_by_disjoint_contiguous_rectangles_within_budget() -> None:
    rng = random.Random(11)  # noqa: S311 (test data)
    for _ in range(200):
        order = [f"u{i}" for i in range(rng.randint(1, 30))]
        wanted = {
            (u, day(rng.randint(0, 90)))
            for u in rng.sample(order, rng.randint(1, len(order)))
            for _ in range(rng.randint(1, 40))
        }
        cap = rng.choice([5, 50, 200, 1500])
        runs = plan_runs(wanted, order, max_user_days=cap)
        pairs = covered(runs)
        assert pairs >= wanted
        assert len(pairs) <= 2 * len(wanted)
        for run in runs:
            assert run.partitions <= cap
            first = order.index(run.keys[0])
            assert run.keys == tuple(order[first : first + len(run.keys)])
