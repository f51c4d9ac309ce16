"""The synthetic generator: deterministic, realistic overlaps, and ground truth that is what the devices saw."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from pipeline.infra.database import create_warehouse_engine
from pipeline.infra.migrations import migrate
from pipeline.ingest.store import BatchCounts
from pipeline.synthetic.emitters import _chunks
from pipeline.synthetic.generator import (
    SyntheticConfig,
    SyntheticDataset,
    default_users_per_chunk,
    ending_with_day,
    generate,
    generate_chunks,
)
from pipeline.synthetic.load import load_chunks, load_dataset


@pytest.fixture(scope="module")
def dataset() -> SyntheticDataset:
    return generate(SyntheticConfig(users=12, days=14, start=dt.date(2024, 3, 4), seed=3))


def test_the_same_seed_gives_the_same_data() -> None:
    config = SyntheticConfig(users=3, days=4, seed=5)
    first, second = generate(config), generate(config)
    pd.testing.assert_frame_equal(first.samples, second.samples)
    pd.testing.assert_frame_equal(first.truth, second.truth)
    other = generate(SyntheticConfig(users=3, days=4, seed=6))
    assert not other.truth["steps"].equals(first.truth["steps"])


@pytest.mark.parametrize("users_per_chunk", [1, 5])
def test_chunks_of_users_concatenate_to_the_whole_dataset(dataset: SyntheticDataset, users_per_chunk: int) -> None:
    # every random draw of a user is seeded with the seed and the user's index, so chunking changes nothing
    chunks = list(
        generate_chunks(SyntheticConfig(users=12, days=14, start=dt.date(2024, 3, 4), seed=3), users_per_chunk)
    )
    assert [len(chunk.users) for chunk in chunks] == ([1] * 12 if users_per_chunk == 1 else [5, 5, 2])
    for table in ("users", "timezone_history", "devices", "samples", "truth"):
        whole = getattr(dataset, table).reset_index(drop=True)
        joined = pd.concat([getattr(chunk, table) for chunk in chunks], ignore_index=True)
        pd.testing.assert_frame_equal(joined, whole, obj=table)
    # each chunk holds its own users' rows only, and arrival days count from one origin for all of them
    for chunk in chunks:
        assert set(chunk.samples["user_id"]) == set(chunk.users["user_id"]) == set(chunk.truth["user_id"])
    assert dataset.samples["arrival_day"].min() == 0


def test_the_default_chunk_holds_a_bounded_number_of_user_days() -> None:
    assert default_users_per_chunk(SyntheticConfig(users=500, days=60)) == 5
    assert default_users_per_chunk(SyntheticConfig(users=3, days=1000)) == 1
    with pytest.raises(ValueError, match="at least 1"):
        next(generate_chunks(SyntheticConfig(users=2, days=2), -1))


def test_volume_and_mix_are_realistic(dataset: SyntheticDataset) -> None:
    per_user_day = len(dataset.samples) / (12 * 14)
    assert 1_000 < per_user_day < 2_000  # the seed's ~1,500 samples per user-day
    truth = dataset.truth
    assert len(truth) == 12 * 14
    assert 6_000 < truth["steps"].median() < 13_000
    assert 300 < truth["active_energy_kcal"].median() < 700
    assert (truth["distance_m"] / truth["steps"].where(truth["steps"] > 0)).dropna().between(0.7, 1.2).all()
    classes = set(dataset.samples["device_class"])
    assert {"watch", "phone", "wearable", "scale_or_app", "manual"} <= classes


def test_watch_and_phone_overlap_so_the_naive_sum_double_counts(dataset: SyntheticDataset) -> None:
    steps = dataset.samples[(dataset.samples["metric"] == "STEPS") & dataset.samples["start"].notna()]
    naive = pd.to_numeric(steps["value"], errors="coerce").sum()
    assert naive > 1.3 * dataset.truth["steps"].sum()


def test_every_user_day_has_its_local_date_and_the_traveller_changes_zone(dataset: SyntheticDataset) -> None:
    history = dataset.timezone_history
    travellers = history.groupby("user_id").size()
    assert (travellers > 1).sum() >= 1
    traveller = travellers[travellers > 1].index[0]
    assert "Asia/Singapore" in set(history.loc[history["user_id"] == traveller, "timezone"])
    days = dataset.truth.groupby("user_id")["local_date"].agg(["min", "max", "count"])
    assert (days["min"] == dt.date(2024, 3, 4)).all() and (days["count"] == 14).all()


def test_mess_is_there_in_the_stated_proportions(dataset: SyntheticDataset) -> None:
    samples = dataset.samples
    n = len(samples)
    non_numeric = pd.to_numeric(samples["value"], errors="coerce").isna().sum()
    bad_units = (samples["unit"] == "furlong").sum()
    flipped = (samples["end"] < samples["start"]).sum()
    no_start = samples["start"].isna().sum()
    malformed = non_numeric + bad_units + flipped + no_start
    assert 0.003 * n < malformed < 0.008 * n
    assert (samples["external_id"] == "rewritten").sum() > 0
    assert samples.duplicated(subset=["user_id", "metric", "start", "end", "source_name", "external_id"]).sum() > 0
    assert samples["arrival_day"].nunique() > 14  # late batches arrive after the period


def test_chunks_cover_exactly_the_masked_minutes() -> None:
    mask = np.array([0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    starts, ends = _chunks(mask, np.random.default_rng(1), mean_length=3.0)
    covered = np.zeros(mask.size, dtype=int)
    for s, e in zip(starts, ends, strict=True):
        covered[s:e] += 1
    assert covered.tolist() == mask.astype(int).tolist()  # every masked minute once, no other minute


def test_loading_lands_every_batch_and_counts_add_up(engine: Engine) -> None:
    small = generate(SyntheticConfig(users=2, days=3, seed=9))
    counts = load_dataset(engine, small)
    assert counts.read == len(small.samples)
    assert counts.balanced
    assert counts.rejected > 0 and counts.duplicates > 0  # malformed rows and exact retries
    again = load_dataset(engine, small)
    assert again.landed == 0 and again.duplicates == counts.landed + counts.duplicates
    with engine.connect() as conn:
        users = conn.execute(text("SELECT count(*) FROM app.users WHERE user_id IN ('u0001', 'u0002')")).scalar()
        zones = conn.execute(text("SELECT count(*) FROM app.user_timezones WHERE user_id = 'u0001'")).scalar()
    assert users == 2 and zones == 1


def test_loading_chunk_by_chunk_lands_what_one_whole_load_lands(make_database: Callable[[], URL]) -> None:
    config = SyntheticConfig(users=3, days=2, start=dt.date(2024, 3, 6), seed=13)
    landed: dict[str, tuple[BatchCounts, list[tuple[object, ...]]]] = {}
    chunk_users: list[int] = []
    for how in ("whole", "chunks"):
        url = make_database()
        migrate(url)
        engine = create_warehouse_engine(url)
        if how == "whole":
            counts = load_dataset(engine, generate(config))
        else:
            counts = load_chunks(
                engine, generate_chunks(config, 2), lambda chunk, _: chunk_users.append(len(chunk.users))
            )
            assert chunk_users == [2, 1]
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT identity, user_id, metric, value, start_utc, end_utc FROM raw.samples ORDER BY identity")
            ).all()
        engine.dispose()
        landed[how] = counts, [tuple(row) for row in rows]
    (whole, whole_rows), (chunked, chunked_rows) = landed["whole"], landed["chunks"]
    assert (chunked.read, chunked.landed, chunked.duplicates, chunked.rejected) == (
        whole.read,
        whole.landed,
        whole.duplicates,
        whole.rejected,
    )
    assert chunked_rows == whole_rows and len(whole_rows) == whole.landed > 0


def test_the_demo_ends_on_a_whole_day_in_every_users_zone() -> None:
    # 5 users as the demo (London, New York, Berlin, Los Angeles with a trip to Singapore, Sydney): the generator
    # records into the morning after the last day; the demo keeps every sample of the last day and nothing later,
    # and not the evening sleep that would count for the day after (its wake-up day).
    dataset = generate(SyntheticConfig(users=5, days=3, start=dt.date(2024, 5, 6), seed=3))
    trimmed = ending_with_day(dataset, dt.date(2024, 5, 8)).samples
    full = dataset.samples
    homes = dataset.users.set_index("user_id")["home_timezone"]

    def local(frame: pd.DataFrame, column: str) -> pd.Series:
        zones = frame["timezone"].fillna(frame["user_id"].map(homes))
        return pd.Series(
            [ts.tz_convert(z).tz_localize(None) for ts, z in zip(frame[column], zones, strict=True)], index=frame.index
        )

    midnight = pd.Timestamp("2024-05-09")
    assert (local(full, "end") > midnight).sum() > 1000  # the margin is there to drop
    assert (local(trimmed, "end") <= midnight).all()
    sleep = trimmed[trimmed["metric"] == "SLEEP_ANALYSIS"]
    assert (local(sleep, "start") < pd.Timestamp("2024-05-08 12:00")).all()
    # everything that ends by the last midnight and is not the last evening's sleep is kept, row for row
    full_end, full_start = local(full, "end"), local(full, "start")
    evening_sleep = (full["metric"] == "SLEEP_ANALYSIS") & (full_start >= pd.Timestamp("2024-05-08 12:00"))
    expected = full[(full_end <= midnight) & ~evening_sleep].reset_index(drop=True)
    pd.testing.assert_frame_equal(trimmed, expected)
    assert set(trimmed["user_id"]) == set(homes.index)
