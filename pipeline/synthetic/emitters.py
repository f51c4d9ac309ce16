"""The samples a synthetic person's devices write, the way real ones do.

Each device observes parts of the person's truth (``person.py``) and writes it in its own shape: an Apple-style
watch (not worn at night unless it tracks sleep, off its wrist while charging) writes steps and distance in chunks of
a few minutes and active energy minute by minute; the phone counts steps and distance only while carried, in chunks
whose boundaries are independent of the watch's, and keeps a sleep schedule; some people have a third-party
wearable that overlaps both, a scale (sometimes typed in by hand as well), a CGM. What a device writes is the truth
of the minutes it covers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.synthetic.person import Person, runs


def _chunks(mask: np.ndarray, rng: np.random.Generator, mean_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut the True runs of ``mask`` into chunks of random length (geometric, mean ``mean_length`` minutes)."""
    cut = rng.random(mask.size) < 1.0 / mean_length
    starts, _ = runs(mask)
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


def device_samples(person: Person) -> pd.DataFrame:
    """Every sample the person's devices write over the period, in landing's incoming shape (before any mess)."""
    rng = person.rng
    parts: list[pd.DataFrame] = []
    moving = person.steps > 0
    if person.has_watch:
        worn = person.watch_worn
        parts += _cumulative(person, "watch", "Apple Watch", worn & moving, 4.0, ("STEPS", "DISTANCE"))
        parts += _cumulative(person, "watch", "Apple Watch", worn & ~person.asleep, 1.0, ("ACTIVE_ENERGY",))
        parts.append(_readings(person, "watch", "Apple Watch", "HEART_RATE", worn, 5, "count/min"))
        parts += _sleep(person, "watch", "Apple Watch", worn & person.asleep, 1e9)
    # iPhone pedometer samples are short (real exports hold 5-second ones); 5 min on average here, still coarser
    # than reality
    parts += _cumulative(person, "phone", "iPhone", person.phone_carried & moving, 5.0, ("STEPS", "DISTANCE"))
    # the phone's sleep schedule: one in-bed interval per night
    parts += _in_bed(person)
    if person.has_wearable:
        worn = person.wearable_worn
        # Fitbit's intraday steps and calories are per minute
        parts += _cumulative(person, "wearable", "Fitbit Charge 6", worn & moving, 1.0, ("STEPS",))
        parts += _cumulative(person, "wearable", "Fitbit Charge 6", worn & ~person.asleep, 1.0, ("ACTIVE_ENERGY",))
        parts.append(_readings(person, "wearable", "Fitbit Charge 6", "HEART_RATE", worn, 10, "bpm"))
        parts += _sleep(person, "wearable", "Fitbit Charge 6", worn & person.asleep, 5.0)
    if person.has_cgm:
        always = np.ones(person.n, bool)
        glucose = _readings(person, "wearable", "Dexcom G7", "BLOOD_GLUCOSE", always, 5, "mg/dL")
        glucose["value"] = 105 + 30 * np.sin(np.arange(len(glucose)) / 12) + rng.normal(0, 8, len(glucose))
        if person.mmol:
            glucose["value"] = (glucose["value"] / 18.0156).round(1)
            glucose["unit"] = "mmol<180.1558800000541>/L"
        parts.append(glucose)
    parts += _body(person)
    parts.append(_vitals(person))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    frame["user_id"] = person.user_id
    if person.zone_known:
        frame["timezone"] = person.zones[((frame["start"] - person.t0) // pd.Timedelta(minutes=1)).to_numpy()]
    else:
        frame["timezone"] = None
    return frame


def _frame(
    person: Person,
    device_class: str,
    source: str,
    metric: str,
    start_idx: np.ndarray,
    end_idx: np.ndarray,
    values: np.ndarray,
    unit: str,
    stage: np.ndarray | None = None,
) -> pd.DataFrame:
    start = person.minutes[start_idx]
    return pd.DataFrame(
        {
            "metric": metric,
            "value": values,
            "unit": unit,
            "stage": stage,
            "start": start,
            "end": person.minutes[np.minimum(end_idx, person.n - 1)]
            + pd.to_timedelta(np.where(end_idx >= person.n, 1, 0), "min"),
            "source_name": source,
            "device_class": device_class,
            "device": f"{person.user_id}-{device_class}",
            "external_id": None,
        }
    )


def _cumulative(
    person: Person, device_class: str, source: str, mask: np.ndarray, mean_length: float, metrics: tuple[str, ...]
) -> list[pd.DataFrame]:
    starts, ends = _chunks(mask, person.rng, mean_length)
    truth = {
        "STEPS": (person.steps, "count"),
        "DISTANCE": (person.distance, "m"),
        "ACTIVE_ENERGY": (person.energy, "kcal"),
    }
    out = []
    for metric in metrics:
        series, unit = truth[metric]
        values = _sum_over(series, starts, ends)
        if metric == "DISTANCE" and device_class == "phone":
            values, unit = values / 1000.0, "km"
        out.append(_frame(person, device_class, source, metric, starts, ends, values, unit))
    return out


def _readings(
    person: Person, device_class: str, source: str, metric: str, mask: np.ndarray, every: int, unit: str
) -> pd.DataFrame:
    offset = int(person.rng.integers(0, every))
    idx = np.flatnonzero(mask[offset::every]) * every + offset
    return _frame(person, device_class, source, metric, idx, idx, person.heart_rate[idx], unit)


def _sleep(person: Person, device_class: str, source: str, mask: np.ndarray, epoch: float) -> list[pd.DataFrame]:
    stage = person.stage
    change = np.concatenate(([True], stage[1:] != stage[:-1]))
    if epoch < 1e6:  # epoch-based wearables cut segments further
        change |= person.rng.random(person.n) < 1.0 / epoch
    segment = np.cumsum(change | np.concatenate(([True], ~mask[:-1])))
    idx = np.flatnonzero(mask)
    if not idx.size:
        return []
    seg = segment[idx]
    first = np.flatnonzero(np.concatenate(([True], np.diff(seg) != 0)))
    starts = idx[first]
    ends = np.append(idx[first[1:] - 1], idx[-1]) + 1
    minutes = (ends - starts).astype(float)
    return [_frame(person, device_class, source, "SLEEP_ANALYSIS", starts, ends, minutes, "min", stage=stage[starts])]


def _in_bed(person: Person) -> list[pd.DataFrame]:
    starts, ends = runs(person.asleep)
    starts = np.maximum(starts - 10, 0)  # in bed a little before falling asleep
    frame = _frame(
        person,
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


def _body(person: Person) -> list[pd.DataFrame]:
    if not person.has_scale:
        return []
    rng = person.rng
    mornings = np.flatnonzero((person.minute_of_day == 7 * 60 + 5) & (rng.random(person.n) < 0.4))
    kg = 70 + 12 * rng.random() + np.cumsum(rng.normal(0, 0.15, mornings.size))
    weight = _frame(
        person,
        "scale_or_app",
        "Withings Health Mate",
        "WEIGHT",
        mornings,
        mornings,
        (kg / 0.45359237).round(1) if person.pounds else kg.round(2),
        "lb" if person.pounds else "kg",
    )
    fat = _frame(
        person,
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


def _vitals(person: Person) -> pd.DataFrame:
    if not person.has_watch:
        return pd.DataFrame()
    noon = np.flatnonzero(person.minute_of_day == 12 * 60)
    resting = _frame(
        person,
        "watch",
        "Apple Watch",
        "RESTING_HEART_RATE",
        noon,
        noon,
        (56 + person.rng.normal(0, 2, noon.size)).round(),
        "count/min",
    )
    night = np.flatnonzero(person.asleep & person.watch_worn & (person.rng.random(person.n) < 0.01))
    spo2 = _frame(
        person,
        "watch",
        "Apple Watch",
        "OXYGEN_SATURATION",
        night,
        night,
        (0.95 + 0.03 * person.rng.random(night.size)).round(2),
        "%",
    )
    return pd.concat([resting, spo2], ignore_index=True)
