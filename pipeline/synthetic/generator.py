"""Synthetic multi-device health data with ground truth, deterministic for a seed, vectorized with NumPy.

Three parts, one module each: the person's true activity minute by minute and the ground truth of their days
(``person.py``), the samples their devices write from it (``emitters.py``), and the mess on top (``mess.py``): a
traveller across time zones, DST days, exact retries, re-written duplicates, late batches, about 1 % malformed or
implausible rows. This module puts them together for a number of users.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pipeline.catalog import SLEEP_METRIC
from pipeline.synthetic.config import SyntheticConfig
from pipeline.synthetic.emitters import device_samples
from pipeline.synthetic.mess import add_mess
from pipeline.synthetic.person import Person
from pipeline.timezones import to_local

__all__ = ["SyntheticConfig", "SyntheticDataset", "ending_with_day", "generate"]


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


def generate(config: SyntheticConfig) -> SyntheticDataset:
    rng = np.random.default_rng(config.seed)
    users, history, devices, samples, truths = [], [], [], [], []
    first_day = np.datetime64(config.start, "D")
    last_day = first_day + np.timedelta64(config.days - 1, "D")
    for index in range(config.users):
        person = Person(index, config, np.random.default_rng([config.seed, index]))
        users.append((person.user_id, person.home, f"Synthetic user {index + 1}"))
        history += person.timezone_history()
        frame = device_samples(person)
        local_start = to_local(frame["start"], frame["timezone"].fillna(person.home))
        keep = (local_start.dt.floor("D") >= first_day - np.timedelta64(1, "D")) & (
            local_start.dt.floor("D") <= last_day + np.timedelta64(1, "D")
        )
        samples.append(frame[keep.to_numpy()])
        for device_class, name in frame[["device_class", "source_name"]].drop_duplicates().itertuples(index=False):
            if device_class != "manual":
                devices.append((person.user_id, f"{person.user_id}-{device_class}", device_class, name))
        truths.append(person.truth(first_day, last_day))
    all_samples = add_mess(pd.concat(samples, ignore_index=True), config, rng)
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
