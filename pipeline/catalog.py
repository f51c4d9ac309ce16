"""The metric catalogue: the one source of truth for metric names, canonical units, unit conversions, aggregation
strategies, plausibility limits, goals and LOINC codes. The landing, the pipeline, the API and the FHIR export all
read it; nothing else hard-codes a unit or a range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd


class Strategy(StrEnum):
    SUM = "sum"  # cumulative: split proportionally, summed
    AVERAGE = "average"  # discrete: sum / count, min, max kept too
    LATEST = "latest"  # discrete: the last reading of the bucket


class ObservationCategory(StrEnum):
    """The FHIR Observation category of a metric's daily value (terminology.hl7.org observation-category codes;
    docs/fhir.md says why each metric has the one it has)."""

    VITAL_SIGNS = "vital-signs"  # the R4 vital-signs profile applies (meta.profile)
    ACTIVITY = "activity"  # "bodily activity ... not under direct supervision": steps, energy, distance, sleep
    LABORATORY = "laboratory"  # an analyte measured in a sample: glucose from a meter


class Kind(StrEnum):
    CUMULATIVE = "cumulative"  # a quantity accumulated over [start, end): steps, metres, kcal
    DISCRETE = "discrete"  # a reading at an instant (or short window): bpm, %, mg/dL, kg
    INTERVAL = "interval"  # a state over [start, end) with a stage: sleep


@dataclass(frozen=True)
class OutlierTest:
    """A per-user plausibility test of a reading against the same user's neighbouring readings of the metric (the
    user's own level: a 25 kg weight is plausible for someone, not among a person's ~75 kg readings).

    Neighbours: the other kept readings (after deduplication across sources) of the same user and metric at most
    ``window_days`` away in time, at most ``per_side`` nearest before and ``per_side`` nearest after. A reading with
    at least ``min_neighbours`` of them is flagged when it is farther from their median than ``max_relative`` times
    that median, or than ``max_absolute`` canonical units (whichever is set). With fewer neighbours it is not judged.
    The test looks only at readings within the window, so one user-day recomputed alone gets the flags that
    recomputing all history gives (the loader reads these metrics ``window_days`` further out)."""

    window_days: int = 14
    per_side: int = 5
    min_neighbours: int = 3
    max_relative: float | None = None
    max_absolute: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Limits:
    """Hard limits reject a sample; soft limits only flag it. ``None`` means unbounded on that side."""

    hard_min: float | None
    hard_max: float | None
    soft_min: float | None = None
    soft_max: float | None = None
    max_duration_hours: float | None = None  # samples longer than this are rejected
    source: str = ""
    soft_max_duration_hours: float | None = None  # samples longer than this are flagged
    soft_max_night_hours: float | None = None  # sleep: a night asleep longer than this flags all its samples
    outlier: OutlierTest | None = None  # per-user test against the user's neighbouring readings


@dataclass(frozen=True)
class Metric:
    name: str
    display_name: str
    canonical_unit: str
    ucum_unit: str
    strategy: Strategy
    kind: Kind
    # accepted unit spellings (lower-cased) -> factor to the canonical unit
    units: dict[str, float]
    limits: Limits
    loinc_sample: str
    loinc_daily: str | None = None
    goal: float | None = None
    observation_category: ObservationCategory = ObservationCategory.VITAL_SIGNS  # the FHIR export's category
    # values at or below 1 in these units are fractions (Apple writes SpO2 0.97 with unit "%")
    fraction_units: frozenset[str] = field(default_factory=frozenset)
    # readings of two sources this close in time are one measurement (discrete metrics, DESIGN §5.4)...
    match_tolerance_seconds: float = 0.0
    # ...if their values also agree this closely (canonical unit): what rounding and unit conversion make of one value
    match_value_tolerance: float = 0.0


_COUNT = {"count": 1.0, "steps": 1.0, "step": 1.0, "": 1.0}
_BPM = {"count/min": 1.0, "bpm": 1.0, "beats/min": 1.0, "/min": 1.0}
_PERCENT = {"%": 1.0, "percent": 1.0, "fraction": 100.0}
# 1 mmol/L of glucose = 18.0156 mg/dL (molar mass 180.156 g/mol); Apple writes the molar mass into the unit.
GLUCOSE_MG_DL_PER_MMOL_L = 18.0156

METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric(
            "STEPS",
            "Steps",
            "count",
            "{steps}",
            Strategy.SUM,
            Kind.CUMULATIVE,
            _COUNT,
            Limits(0, 100_000, soft_max=50_000, max_duration_hours=24, source="DESIGN §3"),
            loinc_sample="55423-8",
            observation_category=ObservationCategory.ACTIVITY,
            loinc_daily="41950-7",
            goal=10_000,
        ),
        Metric(
            "DISTANCE",
            "Distance",
            "m",
            "m",
            Strategy.SUM,
            Kind.CUMULATIVE,
            {"m": 1.0, "meters": 1.0, "metre": 1.0, "km": 1000.0, "mi": 1609.344, "ft": 0.3048, "yd": 0.9144},
            Limits(0, 100_000, soft_max=50_000, max_duration_hours=24, source="100 km in one sample rejected"),
            loinc_sample="55430-3",
            observation_category=ObservationCategory.ACTIVITY,
            loinc_daily="41953-1",
        ),
        Metric(
            "ACTIVE_ENERGY",
            "Active energy",
            "kcal",
            "kcal",
            Strategy.SUM,
            Kind.CUMULATIVE,
            {"kcal": 1.0, "cal": 1.0, "kilocalories": 1.0, "kj": 1 / 4.184},
            Limits(0, 10_000, soft_max=3_000, max_duration_hours=24),
            loinc_sample="41981-2",
            observation_category=ObservationCategory.ACTIVITY,
            goal=500,
        ),
        Metric(
            "SLEEP_ANALYSIS",
            "Sleep",
            "min",
            "min",
            Strategy.SUM,
            Kind.INTERVAL,
            {"min": 1.0, "minutes": 1.0, "h": 60.0, "hr": 60.0, "s": 1 / 60},
            # One entry, or one night's asleep total, over 14 h is flagged: adult "long sleepers" sleep 9-10 h
            # (National Sleep Foundation, Sleep Disorders chapter 8, "Long Sleepers"); 14-15 h in 24 h is the far end
            # of idiopathic hypersomnia (Hypersomnolence Australia, citing Billiard and Dauvilliers). Beyond it the
            # usual cause is overlapping apps, a tracker left running or a mistyped entry; the night can't say which
            # of its samples is wrong, so all of them count as flagged.
            Limits(0, 24 * 60, max_duration_hours=24, soft_max_duration_hours=14, soft_max_night_hours=14),
            loinc_sample="93832-4",
            observation_category=ObservationCategory.ACTIVITY,
        ),
        Metric(
            "HEART_RATE",
            "Heart rate",
            "bpm",
            "/min",
            Strategy.AVERAGE,
            Kind.DISCRETE,
            _BPM,
            Limits(20, 300, soft_min=30, soft_max=220),
            loinc_sample="8867-4",
            match_tolerance_seconds=30,
            match_value_tolerance=1.0,  # whole bpm on screen: two apps rounding 72.5 bpm may write 72 and 73
        ),
        Metric(
            "RESTING_HEART_RATE",
            "Resting heart rate",
            "bpm",
            "/min",
            Strategy.AVERAGE,
            Kind.DISCRETE,
            _BPM,
            Limits(20, 300, soft_min=30, soft_max=120),
            loinc_sample="40443-4",
            match_tolerance_seconds=3600,
            match_value_tolerance=1.0,  # whole bpm, as heart rate
        ),
        Metric(
            "OXYGEN_SATURATION",
            "SpO2",
            "%",
            "%",
            Strategy.AVERAGE,
            Kind.DISCRETE,
            _PERCENT,
            Limits(50, 100, soft_min=90),
            loinc_sample="59408-5",
            loinc_daily="2708-6",
            fraction_units=frozenset({"%", "percent"}),
            match_tolerance_seconds=60,
            match_value_tolerance=1.0,  # whole percent on screen: a fraction of 0.965 may be written as 96 and 97 %
        ),
        Metric(
            "BLOOD_GLUCOSE",
            "Glucose",
            "mg/dL",
            "mg/dL",
            Strategy.AVERAGE,
            Kind.DISCRETE,
            {"mg/dl": 1.0, "mmol/l": GLUCOSE_MG_DL_PER_MMOL_L},
            Limits(10, 1000, soft_min=40, soft_max=400),
            loinc_sample="2339-0",
            observation_category=ObservationCategory.LABORATORY,
            match_tolerance_seconds=300,
            # one 0.1 mmol/L display step (1.8 mg/dL): a reading rounded to 0.1 mmol/L (+-0.9 mg/dL) and the same one
            # in whole mg/dL (+-0.5), converted with 18 instead of 18.0156 (0.09 %: +-0.4 mg/dL at 400), differ by
            # at most 1.8 mg/dL; 150 and 105 mg/dL are two measurements
            match_value_tolerance=1.8,
        ),
        Metric(
            "WEIGHT",
            "Weight",
            "kg",
            "kg",
            Strategy.LATEST,
            Kind.DISCRETE,
            {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "lbs": 0.45359237, "st": 6.35029318},
            # Day-to-day changes of about 1 kg are common and 0.5 kg very common in healthy adults (NHS Grampian,
            # "Weight fluctuations"); the weekly cycle is ~0.35 % of body weight (Turicchi et al., PLoS One 2020,
            # doi:10.1371/journal.pone.0232152). 10 % from the median of the neighbouring readings is five times
            # the common daily swing and more than a month of fast dieting: someone else on the scale, a unit mix-up.
            Limits(1, 700, outlier=OutlierTest(max_relative=0.10, source="NHS Grampian; Turicchi 2020")),
            loinc_sample="29463-7",
            match_tolerance_seconds=600,
            # a scale's 0.1 kg display step: one app's 0.1 kg (+-0.05 kg) and another's 0.1 lb (+-0.023 kg) differ by
            # at most 0.073 kg
            match_value_tolerance=0.1,
        ),
        Metric(
            "BODY_FAT",
            "Body fat",
            "%",
            "%",
            Strategy.LATEST,
            Kind.DISCRETE,
            _PERCENT,
            # Body fat in percentage points, not relative (a relative limit is too tight at 8 % and too loose at
            # 40 %): a scale's estimate moves 1-2 points with a day of dehydration (Tanita SC-240 manual,
            # "Inter-day changes"); 6 points is three times that.
            Limits(1, 80, soft_min=3, soft_max=60, outlier=OutlierTest(max_absolute=6.0, source="Tanita SC-240")),
            loinc_sample="41982-0",
            fraction_units=frozenset({"%", "percent"}),
            match_tolerance_seconds=600,
            match_value_tolerance=0.1,  # one decimal on screen; a fraction written with three decimals is 0.1 %
        ),
    ]
}

# Names the code treats apart. Every other module takes them from here (or renders them into SQL from here): the
# catalogue is the only list of metrics and stages (tests/test_catalogue_is_the_only_list.py).
SLEEP_METRIC = "SLEEP_ANALYSIS"  # the interval metric: its stages make nights, counted on the wake-up day
SLEEP_STAGES = ("in_bed", "asleep", "core", "deep", "rem", "awake")
IN_BED_STAGE = "in_bed"  # time in bed, asleep or not: a layer of its own that never competes with the stages
GENERIC_ASLEEP_STAGE = "asleep"  # asleep, stage unknown: a sleep sample without a stage; a detailed stage beats it
ASLEEP_STAGES = frozenset({"asleep", "core", "deep", "rem"})
# Metrics the insight rules read by their role (pipeline/insights/); sleep is SLEEP_METRIC.
STEPS_METRIC = "STEPS"
ACTIVE_ENERGY_METRIC = "ACTIVE_ENERGY"  # the health score's activity (pipeline/scores/)
RESTING_HR_METRIC = "RESTING_HEART_RATE"
SPO2_METRIC = "OXYGEN_SATURATION"
GLUCOSE_METRIC = "BLOOD_GLUCOSE"
WEIGHT_METRIC = "WEIGHT"
CUMULATIVE_METRICS = tuple(m.name for m in METRICS.values() if m.kind == Kind.CUMULATIVE)  # in catalogue order

# Apple writes glucose as mmol<molar mass>/L, e.g. "mmol<180.1558800000541>/L": mg/dL = mmol/L x molar mass / 10.
_MOLAR_UNIT = re.compile(r"^mmol<(?P<molar_mass>[0-9.]+)>/l$")


def normalize_unit_spelling(units: pd.Series) -> pd.Series:
    """Lower-cased, trimmed unit strings (NaN becomes the empty string)."""
    return units.fillna("").astype(str).str.strip().str.lower()


def _unit_factor(metric_name: str, unit: str) -> tuple[float | None, bool]:
    """(factor to the canonical unit or None, whether values <= 1 are fractions) of one spelled unit."""
    metric = METRICS.get(metric_name)
    if metric is None:
        return None, False
    factor = metric.units.get(unit)
    molar = _MOLAR_UNIT.match(unit)
    if factor is None and molar and metric.name == "BLOOD_GLUCOSE":
        factor = float(molar.group("molar_mass")) / 10.0
    return factor, factor is not None and unit in metric.fraction_units


def canonical_factors(metrics: pd.Series, units: pd.Series, values: pd.Series) -> pd.Series:
    """Factor that turns each ``value`` in ``unit`` into the metric's canonical unit; NaN where not convertible.

    Vectorized: one lookup per distinct (metric, unit) pair, then a gather over the rows (the three series are
    aligned row by row).
    """
    metric_codes, metric_names = pd.factorize(metrics)
    unit_codes, raw_units = pd.factorize(units)
    # a missing unit (code -1) picks the last entry, the empty spelling
    spelled = np.append(normalize_unit_spelling(pd.Series(raw_units, dtype=object)).to_numpy(dtype=object), "")
    pair = metric_codes.astype(np.int64) * (len(spelled) + 1) + (unit_codes + 1)
    pairs, row_pair = np.unique(pair, return_inverse=True)
    pair_factor = np.full(len(pairs), np.nan)
    pair_fraction = np.zeros(len(pairs), dtype=bool)
    for at, key in enumerate(pairs):
        metric_code, unit_slot = divmod(int(key), len(spelled) + 1)
        if metric_code < 0:
            continue  # no metric
        factor, fraction = _unit_factor(str(metric_names[metric_code]), str(spelled[unit_slot - 1]))
        if factor is not None:
            pair_factor[at], pair_fraction[at] = factor, fraction
    factors = pair_factor[row_pair.reshape(-1)]
    fractional = pair_fraction[row_pair.reshape(-1)] & (values.to_numpy() <= 1.0)
    factors[fractional] = 100.0
    return pd.Series(factors, index=metrics.index, dtype="float64")
