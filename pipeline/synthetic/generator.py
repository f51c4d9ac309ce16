"""Synthetic multi-device health data with ground truth, deterministic for a seed, vectorized with NumPy.

Three parts, one module each: the person's true activity minute by minute and the ground truth of their days
(``person.py``), the samples their devices write from it (``emitters.py``), and the mess on top (``mess.py``): a
traveller across time zones, DST days, exact retries, re-written duplicates, late batches, about 1 % malformed or
implausible rows. This module puts them together for a number of users, all at once (`generate`) or a chunk of users
at a time (`generate_chunks`, for datasets larger than memory): every random draw of a user comes from streams seeded
with the seed and the user's index, so both give the same rows. (Until 2026-11-28 the mess was drawn over all users'
samples at once: for a seed, the people, their devices' samples and the ground truth are what they were; the retries,
rewrites, junk and late days are other draws at the same rates, e.g. 225,178 rows instead of 225,205 for 12 users x
14 days, seed 3.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.catalog import SLEEP_METRIC
from pipeline.synthetic.config import SyntheticConfig
from pipeline.synthetic.emitters import device_samples
from pipeline.synthetic.mess import add_mess
from pipeline.synthetic.person import HOME_ZONES, Person, grid_start, home_zone
from pipeline.timezones import to_local

__all__ = [
    "SyntheticConfig",
    "SyntheticDataset",
    "default_users_per_chunk",
    "ending_with_day",
    "generate",
    "generate_chunks",
]

# Users per chunk of `generate_chunks` by default: about this many user-days (~1,500 samples each) at a time.
USER_DAYS_PER_CHUNK = 300  # ~0.5 M samples: ~500 MB at the peak of generating and landing one
_MESS_STREAM = 1  # a user's mess is drawn from default_rng([seed, index, 1]); their person from ([seed, index])


@dataclass(frozen=True)
class SyntheticDataset:
    users: pd.DataFrame  # user_id, home_timezone, display_name
    timezone_history: pd.DataFrame  # user_id, valid_from, timezone
    devices: pd.DataFrame  # user_id, device_id, device_class, name
    samples: pd.DataFrame  # landing.INCOMING_COLUMNS + arrival_day
    truth: pd.DataFrame  # user_id, local_date, steps, distance_m, active_energy_kcal, sleep_minutes

    @property
    def batches(self) -> list[pd.DataFrame]:
        """Samples grouped by the day they arrive (late data arrives in later batches)."""
        return [group.drop(columns="arrival_day") for _, group in self.samples.groupby("arrival_day", sort=True)]


def default_users_per_chunk(config: SyntheticConfig) -> int:
    """Users per chunk so that a chunk holds about `USER_DAYS_PER_CHUNK` user-days."""
    return max(1, USER_DAYS_PER_CHUNK // max(config.days, 1))


def arrival_origin(config: SyntheticConfig) -> pd.Timestamp:
    """Arrival day 0 starts here, for every user of the dataset: the earliest grid start among their home zones
    (known from the configuration alone, so each chunk of users counts arrival days from the same instant)."""
    homes = {home_zone(index) for index in range(min(config.users, len(HOME_ZONES)))}
    return min(grid_start(home, config.start) for home in homes)


def generate(config: SyntheticConfig) -> SyntheticDataset:
    """All of ``config``'s users at once: the concatenation of `generate_chunks`, for small datasets."""
    return _generate_users(config, range(config.users))


def generate_chunks(config: SyntheticConfig, users_per_chunk: int | None = None) -> Iterator[SyntheticDataset]:
    """The dataset ``users_per_chunk`` users at a time (default `default_users_per_chunk`), so memory does not grow
    with the number of users. Every user's rows depend on the seed and their index only: the chunks concatenated
    are `generate(config)` row for row, whatever the chunk size."""
    size = users_per_chunk or default_users_per_chunk(config)
    if size < 1:
        raise ValueError(f"users_per_chunk must be at least 1, not {size}")
    for first in range(0, config.users, size):
        yield _generate_users(config, range(first, min(first + size, config.users)))


def _generate_users(config: SyntheticConfig, indexes: range) -> SyntheticDataset:
    users, history, devices, samples, truths = [], [], [], [], []
    first_day = np.datetime64(config.start, "D")
    last_day = first_day + np.timedelta64(config.days - 1, "D")
    origin = arrival_origin(config)
    for index in indexes:  # a loop over users; each user's samples are vectorized
        person = Person(index, config, np.random.default_rng([config.seed, index]))
        users.append((person.user_id, person.home, f"Synthetic user {index + 1}"))
        history += person.timezone_history()
        frame = device_samples(person)
        local_start = to_local(frame["start"], frame["timezone"].fillna(person.home))
        keep = (local_start.dt.floor("D") >= first_day - np.timedelta64(1, "D")) & (
            local_start.dt.floor("D") <= last_day + np.timedelta64(1, "D")
        )
        mess_rng = np.random.default_rng([config.seed, index, _MESS_STREAM])
        samples.append(add_mess(frame[keep.to_numpy()].reset_index(drop=True), config, mess_rng, origin))
        for device_class, name in frame[["device_class", "source_name"]].drop_duplicates().itertuples(index=False):
            if device_class != "manual":
                devices.append((person.user_id, f"{person.user_id}-{device_class}", device_class, name))
        truths.append(person.truth(first_day, last_day))
    all_samples = pd.concat(samples, ignore_index=True)
    all_samples["user_entered"] = all_samples["device_class"] == "manual"
    all_samples["metadata"] = None
    all_samples["source_app"] = None
    return SyntheticDataset(
        users=pd.DataFrame(users, columns=["user_id", "home_timezone", "display_name"]),
        timezone_history=pd.DataFrame(history, columns=["user_id", "valid_from", "timezone"]),
        devices=pd.DataFrame(devices, columns=["user_id", "device_id", "device_class", "name"]).drop_duplicates(
            ["user_id", "device_id"]
        ),
        samples=all_samples,
        truth=pd.concat(truths, ignore_index=True),
    )


def ending_with_day(dataset: SyntheticDataset, last_day: dt.date) -> SyntheticDataset:
    """The dataset without the margin the generator writes after ``last_day`` (each user's devices keep recording
    into the next morning): what ends after ``last_day`` on the sample's wall clock goes, and so does the sleep of
    the night that starts on ``last_day`` (it would count for the next day, the wake-up day). Its latest day is then a
    whole day for every user, not a morning (the demo opens on it)."""
    samples = dataset.samples
    homes = samples["user_id"].map(dataset.users.set_index("user_id")["home_timezone"])
    zones = samples["timezone"].fillna(homes)
    next_midnight = pd.Timestamp(last_day) + pd.Timedelta(days=1)
    ends_in_time = to_local(samples["end"], zones) <= next_midnight
    night_after = (samples["metric"] == SLEEP_METRIC) & (
        to_local(samples["start"], zones) >= pd.Timestamp(last_day) + pd.Timedelta(hours=12)
    )
    return replace(dataset, samples=samples[(ends_in_time & ~night_after).to_numpy()].reset_index(drop=True))
