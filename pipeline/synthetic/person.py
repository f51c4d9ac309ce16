"""A synthetic person's true activity, minute by minute, and the ground truth of their days.

Per user and per minute of the period (UTC minutes, interpreted in the zone the user is in): the person sleeps each
night (bedtime and wake-up vary), walks in bouts during the day and sometimes runs, so the true steps, distance,
active energy and sleep stage of every minute are known. Which devices they own, and when they wear or carry them
(a watch off the wrist while charging, a phone left on a desk), is theirs too: the device emitters
(``emitters.py``) write samples of the minutes a device covers, so the ground truth of a user-day is the sum, over
the minutes covered by at least one device, of the true per-minute value.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.catalog import ASLEEP_STAGES
from pipeline.synthetic.config import SyntheticConfig
from pipeline.timezones import to_local

HOME_ZONES = (
    "Europe/London",
    "America/New_York",
    "Europe/Berlin",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Asia/Tokyo",
    "America/Sao_Paulo",
    "Europe/Madrid",
)
TRAVEL_ZONE = "Asia/Singapore"
STAGE_CYCLE = np.array(["core", "deep", "core", "rem", "awake"])


def home_zone(index: int) -> str:
    """The home time zone of user number ``index`` (0-based): the zones in turn."""
    return HOME_ZONES[index % len(HOME_ZONES)]


def grid_start(home: str, start: dt.date) -> pd.Timestamp:
    """The first UTC minute of a person's grid: 14 hours before the local midnight that starts the period, so every
    local day of the period is covered (+1 day margin for travel and offsets)."""
    period_start = pd.Timestamp(start).tz_localize(home).tz_convert("UTC")
    return (period_start - pd.Timedelta(hours=14)).floor("h")


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) indexes of the True runs of a boolean array, end exclusive."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


class Person:
    """One person's minute-level truth, their devices and when they wear or carry them."""

    def __init__(self, index: int, config: SyntheticConfig, rng: np.random.Generator) -> None:
        self.user_id = f"u{index + 1:04d}"
        self.rng = rng
        self.config = config
        self.home = home_zone(index)
        self.traveller = index % 10 == 3
        self.has_watch = rng.random() < 0.85
        self.watch_at_night = self.has_watch and rng.random() < 0.5
        self.has_wearable = rng.random() < 0.25
        self.has_scale = rng.random() < 0.5
        self.has_cgm = rng.random() < 0.2
        self.zone_known = rng.random() < 0.7
        self.pounds = self.home.startswith("America") and rng.random() < 0.7
        self.mmol = not self.home.startswith("America")
        self.t0 = grid_start(self.home, config.start)  # UTC minute grid covering every local day of the period
        self.n = (config.days + 2) * 1440
        self.minutes = pd.date_range(self.t0, periods=self.n, freq="min")
        self.zones = self._zone_per_minute()
        self.local = to_local(pd.Series(self.minutes), pd.Series(self.zones)).to_numpy()
        self.local_date = self.local.astype("datetime64[D]")
        local_minute_of_day = (self.local - self.local_date).astype("timedelta64[m]").astype(int)
        self.minute_of_day = local_minute_of_day
        self._simulate()

    def _zone_per_minute(self) -> np.ndarray:
        zones = np.full(self.n, self.home, dtype=object)
        if self.traveller and self.config.days >= 10:
            away = slice(4 * 1440 + 600, 9 * 1440 + 300)
            zones[away] = TRAVEL_ZONE
        return zones

    def timezone_history(self) -> list[tuple[str, pd.Timestamp, str]]:
        changes = [(self.user_id, self.t0, self.home)]
        if self.traveller and self.config.days >= 10:
            changes.append((self.user_id, self.minutes[4 * 1440 + 600], TRAVEL_ZONE))
            changes.append((self.user_id, self.minutes[9 * 1440 + 300], self.home))
        return changes

    def _simulate(self) -> None:
        rng, n = self.rng, self.n
        day_index = (self.local_date - self.local_date[0]).astype(int)
        n_days = day_index.max() + 1
        bedtime = 22 * 60 + 30 + rng.normal(0, 40, n_days)  # minutes after local midnight
        sleep_length = rng.normal(7.5 * 60, 45, n_days)
        # asleep from bedtime of local day d to wake on day d+1
        wake_of_previous = (bedtime + sleep_length - 1440)[np.maximum(day_index - 1, 0)]
        m = self.minute_of_day
        asleep = (m >= bedtime[day_index]) | ((m < wake_of_previous) & (day_index > 0))
        self.asleep = asleep
        # sleep stages: a cycle of segments of random length inside each night
        starts, ends = runs(asleep)
        stage = np.full(n, "", dtype=object)
        for s, e in zip(starts, ends, strict=True):  # a few nights per user: not per sample
            lengths = rng.integers(8, 40, size=(e - s) // 8 + 2)
            labels = STAGE_CYCLE[np.arange(lengths.size) % STAGE_CYCLE.size]
            stage[s:e] = np.repeat(labels, lengths)[: e - s]
        self.stage = stage
        # walking bouts while awake; runs on some days
        awake = ~asleep
        bout_start = awake & (rng.random(n) < 0.012)
        bout_len = rng.geometric(1 / 7, n)
        walking = np.zeros(n, dtype=bool)
        for offset in range(0, 40):  # vectorized over minutes: mark minutes within `bout_len` after a start
            shifted = np.roll(bout_start & (bout_len > offset), offset)
            walking |= shifted
        walking &= awake
        cadence = np.where(walking, rng.normal(105, 12, n).clip(60, 140), 0.0)
        run_day = rng.random(n_days) < 0.25
        run_start = 7 * 60 + rng.integers(0, 600, n_days)
        running = awake & run_day[day_index] & (m >= run_start[day_index]) & (m < run_start[day_index] + 30)
        cadence = np.where(running, rng.normal(165, 8, n), cadence)
        self.steps = np.round(cadence).astype(float)
        stride = np.where(running, 1.15, 0.74)
        self.distance = self.steps * stride
        self.energy = np.where(awake, 0.08 + 0.045 * self.steps, 0.0).round(4)
        self.heart_rate = (58 + 0.35 * cadence + rng.normal(0, 3, n)).round()

        # device coverage
        charging_start = 8 * 60 + rng.integers(0, 10 * 60, n_days)
        charging = (m >= charging_start[day_index]) & (m < charging_start[day_index] + rng.integers(45, 100))
        self.watch_worn = self.has_watch & ~charging & (awake | self.watch_at_night)
        left_behind = rng.random(n_days * 24) < 0.25  # the phone lies on a desk for some hours
        hour_index = np.minimum((day_index * 24 + m // 60), n_days * 24 - 1)
        self.phone_carried = awake & ~left_behind[hour_index]
        self.wearable_worn = np.full(n, self.has_wearable) & (rng.random(n_days)[day_index] < 0.9)

    def truth(self, first_day: np.datetime64, last_day: np.datetime64) -> pd.DataFrame:
        """True totals per local day: each minute counted once if any device covered it."""
        phone_moving = self.phone_carried & (self.steps > 0)
        watch_moving = self.watch_worn & (self.steps > 0)
        wearable_moving = self.wearable_worn & (self.steps > 0)
        steps_seen = watch_moving | phone_moving | wearable_moving
        distance_seen = watch_moving | phone_moving
        energy_seen = (self.watch_worn | self.wearable_worn) & ~self.asleep
        asleep_stage = np.isin(self.stage, list(ASLEEP_STAGES))
        sleep_seen = (self.watch_worn | self.wearable_worn) & self.asleep & asleep_stage
        frame = pd.DataFrame(
            {
                "local_date": self.local_date,
                "steps": np.where(steps_seen, self.steps, 0.0),
                "distance_m": np.where(distance_seen, self.distance, 0.0),
                "active_energy_kcal": np.where(energy_seen, self.energy, 0.0),
            }
        )
        daily = frame.groupby("local_date").sum()
        # sleep counts for the local day on which the night ends (the wake-up day)
        starts, ends = runs(self.asleep)
        night_minutes = np.array([sleep_seen[s:e].sum() for s, e in zip(starts, ends, strict=True)], dtype=float)
        wake_day = self.local_date[np.minimum(ends, self.n - 1)]
        sleep = pd.Series(night_minutes, index=wake_day).groupby(level=0).sum()
        daily["sleep_minutes"] = sleep.reindex(daily.index, fill_value=0.0)
        daily = daily.loc[(daily.index >= first_day) & (daily.index <= last_day)].reset_index()
        daily.insert(0, "user_id", self.user_id)
        daily["local_date"] = daily["local_date"].dt.date
        return daily
