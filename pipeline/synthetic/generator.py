"""Synthetic multi-device health data with ground truth, deterministic for a seed, vectorized with NumPy.

The model, per user and per minute of the period (UTC minutes, interpreted in the zone the user is in):
- a person sleeps each night (bedtime and wake-up vary), walks in bouts during the day and sometimes runs; the true
  steps, distance, active energy and sleep stage of every minute are known;
- devices observe parts of that truth and write samples the way real ones do: an Apple-style watch (not worn at
  night unless it tracks sleep, off its wrist while charging) writes steps/distance in chunks of a few minutes and
  active energy minute by minute; the phone counts steps and distance only while carried, in chunks whose
  boundaries are independent of the watch's; some users have a third-party wearable that overlaps both, a scale,
  a CGM, manual entries;
- what a device writes is the truth of the minutes it covers, so "the truth without double counting" of a
  user-day is the sum over the minutes covered by at least one device of the true per-minute value.
Realistic mess on top: a traveller across time zones, DST days, exact retries, re-written duplicates, late
batches, about 1 % malformed or implausible rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.catalog import ASLEEP_STAGES
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
MINUTE = np.timedelta64(1, "m")


@dataclass(frozen=True)
class SyntheticConfig:
    users: int = 10
    days: int = 14
    start: dt.date = dt.date(2024, 3, 4)  # covers the US (10 Mar) DST change; 60 days reach the EU one (31 Mar)
    seed: int = 7
    malformed_rate: float = 0.005
    implausible_rate: float = 0.005
    retry_rate: float = 0.004  # exact re-sends: same identity, collapse at landing
    rewrite_rate: float = 0.003  # same content, another external id: collapse in the pipeline's exact-dedupe
    late_rate: float = 0.05  # share of samples synced 1-5 days late


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


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) indexes of the True runs of a boolean array, end exclusive."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[0::2], edges[1::2]


def _chunks(mask: np.ndarray, rng: np.random.Generator, mean_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut the True runs of ``mask`` into chunks of random length (geometric, mean ``mean_length`` minutes)."""
    cut = rng.random(mask.size) < 1.0 / mean_length
    starts, _ = _runs(mask)
    cut[starts] = True
    cut &= mask
    chunk_id = np.cumsum(cut) - 1
    minutes = np.flatnonzero(mask)
    ids = chunk_id[minutes]
    first = np.flatnonzero(np.concatenate(([True], np.diff(ids) != 0)))
    chunk_start = minutes[first]
    chunk_end = np.append(minutes[first[1:] - 1], minutes[-1]) + 1 if minutes.size else np.array([], dtype=int)
    # a chunk ends where its run of consecutive minutes ends
    return chunk_start, chunk_end


def _sum_over(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    cumulative: np.ndarray = np.concatenate(([0.0], np.cumsum(values)))
    return np.asarray(cumulative[ends] - cumulative[starts])


class _UserModel:
    """One person's minute-level truth and the samples their devices write."""

    def __init__(self, index: int, config: SyntheticConfig, rng: np.random.Generator) -> None:
        self.user_id = f"u{index + 1:04d}"
        self.rng = rng
        self.config = config
        self.home = HOME_ZONES[index % len(HOME_ZONES)]
        self.traveller = index % 10 == 3
        self.has_watch = rng.random() < 0.85
        self.watch_at_night = self.has_watch and rng.random() < 0.5
        self.has_wearable = rng.random() < 0.25
        self.has_scale = rng.random() < 0.5
        self.has_cgm = rng.random() < 0.2
        self.zone_known = rng.random() < 0.7
        self.pounds = self.home.startswith("America") and rng.random() < 0.7
        self.mmol = not self.home.startswith("America")
        period_start = pd.Timestamp(config.start).tz_localize(self.home).tz_convert("UTC")
        # UTC minute grid covering every local day of the period (+1 day margin for travel/offsets)
        self.t0 = (period_start - pd.Timedelta(hours=14)).floor("h")
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

    # ----- truth ---------------------------------------------------------------------------------------------
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
        starts, ends = _runs(asleep)
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

    # ----- samples ---------------------------------------------------------------------------------------------
    def samples(self) -> pd.DataFrame:
        rng = self.rng
        parts: list[pd.DataFrame] = []
        moving = self.steps > 0
        if self.has_watch:
            parts += self._cumulative("watch", "Apple Watch", self.watch_worn & moving, 4.0, ("STEPS", "DISTANCE"))
            parts += self._cumulative("watch", "Apple Watch", self.watch_worn & ~self.asleep, 1.0, ("ACTIVE_ENERGY",))
            parts.append(self._readings("watch", "Apple Watch", "HEART_RATE", self.watch_worn, 5, "count/min"))
            parts += self._sleep("watch", "Apple Watch", self.watch_worn & self.asleep, 1e9)
        # iPhone pedometer samples are short (the real export in shared/fixtures has 5-second ones); 5 min on average
        # here, still coarser than reality
        parts += self._cumulative("phone", "iPhone", self.phone_carried & moving, 5.0, ("STEPS", "DISTANCE"))
        # the phone's sleep schedule: one in-bed interval per night
        parts += self._in_bed()
        if self.has_wearable:
            worn = self.wearable_worn
            # Fitbit's intraday steps and calories are per minute
            parts += self._cumulative("wearable", "Fitbit Charge 6", worn & moving, 1.0, ("STEPS",))
            parts += self._cumulative("wearable", "Fitbit Charge 6", worn & ~self.asleep, 1.0, ("ACTIVE_ENERGY",))
            parts.append(self._readings("wearable", "Fitbit Charge 6", "HEART_RATE", worn, 10, "bpm"))
            parts += self._sleep("wearable", "Fitbit Charge 6", worn & self.asleep, 5.0)
        if self.has_cgm:
            glucose = self._readings("wearable", "Dexcom G7", "BLOOD_GLUCOSE", np.ones(self.n, bool), 5, "mg/dL")
            glucose["value"] = 105 + 30 * np.sin(np.arange(len(glucose)) / 12) + rng.normal(0, 8, len(glucose))
            if self.mmol:
                glucose["value"] = (glucose["value"] / 18.0156).round(1)
                glucose["unit"] = "mmol<180.1558800000541>/L"
            parts.append(glucose)
        parts += self._body()
        parts.append(self._vitals())
        frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
        frame["user_id"] = self.user_id
        if self.zone_known:
            frame["timezone"] = self.zones[((frame["start"] - self.t0) // pd.Timedelta(minutes=1)).to_numpy()]
        else:
            frame["timezone"] = None
        return frame

    def _frame(
        self,
        device_class: str,
        source: str,
        metric: str,
        start_idx: np.ndarray,
        end_idx: np.ndarray,
        values: np.ndarray,
        unit: str,
        stage: np.ndarray | None = None,
    ) -> pd.DataFrame:
        start = self.minutes[start_idx]
        return pd.DataFrame(
            {
                "metric": metric,
                "value": values,
                "unit": unit,
                "stage": stage,
                "start": start,
                "end": self.minutes[np.minimum(end_idx, self.n - 1)]
                + pd.to_timedelta(np.where(end_idx >= self.n, 1, 0), "min"),
                "source_name": source,
                "device_class": device_class,
                "device": f"{self.user_id}-{device_class}",
                "external_id": None,
            }
        )

    def _cumulative(
        self, device_class: str, source: str, mask: np.ndarray, mean_length: float, metrics: tuple[str, ...]
    ) -> list[pd.DataFrame]:
        starts, ends = _chunks(mask, self.rng, mean_length)
        truth = {
            "STEPS": (self.steps, "count"),
            "DISTANCE": (self.distance, "m"),
            "ACTIVE_ENERGY": (self.energy, "kcal"),
        }
        out = []
        for metric in metrics:
            series, unit = truth[metric]
            values = _sum_over(series, starts, ends)
            if metric == "DISTANCE" and device_class == "phone":
                values, unit = values / 1000.0, "km"
            out.append(self._frame(device_class, source, metric, starts, ends, values, unit))
        return out

    def _readings(
        self, device_class: str, source: str, metric: str, mask: np.ndarray, every: int, unit: str
    ) -> pd.DataFrame:
        offset = int(self.rng.integers(0, every))
        idx = np.flatnonzero(mask[offset::every]) * every + offset
        return self._frame(device_class, source, metric, idx, idx, self.heart_rate[idx], unit)

    def _sleep(self, device_class: str, source: str, mask: np.ndarray, epoch: float) -> list[pd.DataFrame]:
        stage = self.stage
        change = np.concatenate(([True], stage[1:] != stage[:-1]))
        if epoch < 1e6:  # epoch-based wearables cut segments further
            change |= self.rng.random(self.n) < 1.0 / epoch
        segment = np.cumsum(change | np.concatenate(([True], ~mask[:-1])))
        idx = np.flatnonzero(mask)
        if not idx.size:
            return []
        seg = segment[idx]
        first = np.flatnonzero(np.concatenate(([True], np.diff(seg) != 0)))
        starts = idx[first]
        ends = np.append(idx[first[1:] - 1], idx[-1]) + 1
        return [
            self._frame(
                device_class,
                source,
                "SLEEP_ANALYSIS",
                starts,
                ends,
                (ends - starts).astype(float),
                "min",
                stage=stage[starts],
            )
        ]

    def _in_bed(self) -> list[pd.DataFrame]:
        starts, ends = _runs(self.asleep)
        starts = np.maximum(starts - 10, 0)  # in bed a little before falling asleep
        frame = self._frame(
            "phone",
            "iPhone",
            "SLEEP_ANALYSIS",
            starts,
            ends,
            (ends - starts).astype(float),
            "min",
            stage=np.full(starts.size, "in_bed"),
        )
        return [frame]

    def _body(self) -> list[pd.DataFrame]:
        if not self.has_scale:
            return []
        rng = self.rng
        mornings = np.flatnonzero((self.minute_of_day == 7 * 60 + 5) & (rng.random(self.n) < 0.4))
        kg = 70 + 12 * rng.random() + np.cumsum(rng.normal(0, 0.15, mornings.size))
        weight = self._frame(
            "scale_or_app",
            "Withings Health Mate",
            "WEIGHT",
            mornings,
            mornings,
            (kg / 0.45359237).round(1) if self.pounds else kg.round(2),
            "lb" if self.pounds else "kg",
        )
        fat = self._frame(
            "scale_or_app",
            "Withings Health Mate",
            "BODY_FAT",
            mornings,
            mornings,
            (0.18 + 0.05 * rng.random(mornings.size)).round(3),
            "%",
        )
        # now and then the person also types the reading in: the same measurement from a lower-priority source
        typed = rng.random(mornings.size) < 0.3
        manual = weight[typed].assign(source_name="Health", device_class="manual", device=None)
        manual["start"] = manual["start"] + pd.Timedelta(minutes=2)
        manual["end"] = manual["start"]
        return [weight, fat, manual]

    def _vitals(self) -> pd.DataFrame:
        if not self.has_watch:
            return pd.DataFrame()
        noon = np.flatnonzero(self.minute_of_day == 12 * 60)
        resting = self._frame(
            "watch",
            "Apple Watch",
            "RESTING_HEART_RATE",
            noon,
            noon,
            (56 + self.rng.normal(0, 2, noon.size)).round(),
            "count/min",
        )
        night = np.flatnonzero(self.asleep & self.watch_worn & (self.rng.random(self.n) < 0.01))
        spo2 = self._frame(
            "watch",
            "Apple Watch",
            "OXYGEN_SATURATION",
            night,
            night,
            (0.95 + 0.03 * self.rng.random(night.size)).round(2),
            "%",
        )
        return pd.concat([resting, spo2], ignore_index=True)

    # ----- ground truth ------------------------------------------------------------------------------------------
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
        starts, ends = _runs(self.asleep)
        night_minutes = np.array([sleep_seen[s:e].sum() for s, e in zip(starts, ends, strict=True)], dtype=float)
        wake_day = self.local_date[np.minimum(ends, self.n - 1)]
        sleep = pd.Series(night_minutes, index=wake_day).groupby(level=0).sum()
        daily["sleep_minutes"] = sleep.reindex(daily.index, fill_value=0.0)
        daily = daily.loc[(daily.index >= first_day) & (daily.index <= last_day)].reset_index()
        daily.insert(0, "user_id", self.user_id)
        daily["local_date"] = daily["local_date"].dt.date
        return daily


def _mess(samples: pd.DataFrame, config: SyntheticConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Retries, re-written duplicates, malformed and implausible rows, late arrival."""
    n = len(samples)
    samples = samples.assign(arrival_day=((samples["end"] - samples["end"].min()) // pd.Timedelta(days=1)))
    late = rng.random(n) < config.late_rate
    samples.loc[late, "arrival_day"] += rng.integers(1, 6, late.sum())
    retries = samples.sample(frac=config.retry_rate, random_state=int(rng.integers(1 << 31)))
    retries = retries.assign(arrival_day=retries["arrival_day"] + 1)
    rewrites = samples.sample(frac=config.rewrite_rate, random_state=int(rng.integers(1 << 31)))
    rewrites = rewrites.assign(external_id="rewritten")
    # Junk arrives as extra rows (a buggy app, a broken sync), beside the real measurements, which stay: what the
    # devices saw is still all there, so the ground truth stays exact.
    junk = samples.sample(frac=config.malformed_rate, random_state=int(rng.integers(1 << 31))).copy()
    kinds = rng.integers(0, 4, len(junk))
    junk["value"] = junk["value"].astype(object)
    junk.loc[junk.index[kinds == 0], "value"] = "n/a"
    junk.loc[junk.index[kinds == 1], "unit"] = "furlong"
    flipped = junk.index[kinds == 2]
    junk.loc[flipped, "end"] = junk.loc[flipped, "start"] - pd.Timedelta(minutes=5)
    junk.loc[junk.index[kinds == 3], "start"] = pd.NaT
    heart = samples[samples["metric"] == "HEART_RATE"]
    implausible = heart.sample(
        frac=min(1.0, config.implausible_rate * n / max(len(heart), 1)), random_state=int(rng.integers(1 << 31))
    ).assign(value=400.0, external_id="glitch")
    out = pd.concat([samples, retries, rewrites, junk, implausible], ignore_index=True)
    out["value"] = out["value"].astype(object)
    return out


def generate(config: SyntheticConfig) -> SyntheticDataset:
    rng = np.random.default_rng(config.seed)
    users, history, devices, samples, truths = [], [], [], [], []
    first_day = np.datetime64(config.start, "D")
    last_day = first_day + np.timedelta64(config.days - 1, "D")
    for index in range(config.users):
        model = _UserModel(index, config, np.random.default_rng([config.seed, index]))
        users.append((model.user_id, model.home, f"Synthetic user {index + 1}"))
        history += model.timezone_history()
        frame = model.samples()
        local_start = to_local(frame["start"], frame["timezone"].fillna(model.home))
        keep = (local_start.dt.floor("D") >= first_day - np.timedelta64(1, "D")) & (
            local_start.dt.floor("D") <= last_day + np.timedelta64(1, "D")
        )
        samples.append(frame[keep.to_numpy()])
        for device_class, name in frame[["device_class", "source_name"]].drop_duplicates().itertuples(index=False):
            if device_class != "manual":
                devices.append((model.user_id, f"{model.user_id}-{device_class}", device_class, name))
        truths.append(model.truth(first_day, last_day))
    all_samples = _mess(pd.concat(samples, ignore_index=True), config, rng)
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
