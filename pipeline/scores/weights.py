"""The health score's inputs, weights and rules of sufficiency (docs/health-score.md writes the formula out).

Weights are product choices, not clinical ones: activity weighs most because it is the component a user changes day
to day; sleep and vitals share the rest. Within a component, each input weighs its share; a missing input or
component re-weights the present ones, and ``completeness`` says how much of the full weight had data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Better(Enum):
    HIGHER = "higher"  # normalized (v - min) / (max - min)
    LOWER = "lower"  # normalized (max - v) / (max - min)
    ZERO = "zero"  # a distance from an ideal: normalized 1 - v / max (the ideal is the minimum, whoever reaches it)


@dataclass(frozen=True)
class ScoreInput:
    name: str
    component: str
    weight: float  # within its component
    better: Better


COMPONENT_WEIGHTS = {"activity": 0.4, "sleep": 0.3, "vitals": 0.3}
COMPONENTS = tuple(COMPONENT_WEIGHTS)

INPUTS = (
    ScoreInput("steps", "activity", 0.5, Better.HIGHER),
    ScoreInput("active_energy", "activity", 0.5, Better.HIGHER),
    ScoreInput("sleep_duration", "sleep", 0.6, Better.ZERO),  # minutes outside the 7-9 h band
    ScoreInput("sleep_regularity", "sleep", 0.4, Better.LOWER),  # shift of the sleep midpoint from the night before
    ScoreInput("resting_hr", "vitals", 0.5, Better.LOWER),
    ScoreInput("spo2", "vitals", 0.5, Better.HIGHER),
)
INPUT_BY_NAME = {i.name: i for i in INPUTS}

# Sleep duration's ideal band (AASM/SRS consensus: 7 h or more for adults; 9 h the upper end of the recommended range)
SLEEP_BAND_MINUTES = (420.0, 540.0)

# Winsorizing bounds: the cohort's 5th and 95th percentiles of the day (marts.cohort_daily)
WINSOR_LOW, WINSOR_HIGH = 0.05, 0.95

# An input is normalized on a day only when at least this many users have it: a min-max over fewer says nothing
MIN_COHORT = 3
# A user-day is scored only with at least this many components and this much of the full weight
MIN_COMPONENTS = 2
MIN_COMPLETENESS = 0.5
