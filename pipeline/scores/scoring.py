"""The health score as a pure function of long frames: every user and day at once, no loop per user.

``inputs``: one row per (user_id, local_date, input) with a usable value (a missing input has no row).
``bounds``: the cohort's winsorizing bounds per (local_date, input): p5 and p95 (``marts.cohort_daily``). An input
of a day without bounds is winsorized at the percentiles of the values given (the same interpolation as
``percentile_cont``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.scores.weights import (
    COMPONENT_WEIGHTS,
    COMPONENTS,
    INPUTS,
    MIN_COHORT,
    MIN_COMPLETENESS,
    MIN_COMPONENTS,
    SLEEP_BAND_MINUTES,
    WINSOR_HIGH,
    WINSOR_LOW,
    Better,
)

INPUT_COLUMNS = ("user_id", "local_date", "input", "value")
BOUND_COLUMNS = ("local_date", "input", "p5", "p95")
SCORE_COLUMNS = ("user_id", "local_date", "score", *COMPONENTS, "completeness", "cohort_users")

_META = pd.DataFrame(
    {
        "input": [i.name for i in INPUTS],
        "component": [i.component for i in INPUTS],
        "input_weight": [i.weight for i in INPUTS],
        "better": [i.better.value for i in INPUTS],
        "component_weight": [COMPONENT_WEIGHTS[i.component] for i in INPUTS],
    }
)


def _with_bounds(values: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """``values`` with p5/p95 columns: the cohort's, or the values' own percentiles where the cohort has none."""
    if bounds.empty:
        merged = values.assign(p5=np.nan, p95=np.nan)
    else:
        merged = values.merge(bounds[list(BOUND_COLUMNS)], on=["local_date", "input"], how="left")
    groups = merged.groupby(["local_date", "input"], sort=False)["value"]
    own_low = groups.transform(lambda v: np.quantile(v, WINSOR_LOW))
    own_high = groups.transform(lambda v: np.quantile(v, WINSOR_HIGH))
    return merged.assign(p5=merged["p5"].fillna(own_low), p95=merged["p95"].fillna(own_high))


def normalize(values: pd.DataFrame, bounds: pd.DataFrame, winsorize: bool = True) -> pd.DataFrame:
    """Per (user, day, input): the value winsorized at the day's bounds, then min-max normalized to 0..1 across the
    day's users (1 is best). Inputs fewer than ``MIN_COHORT`` users have on a day are dropped for that day; a day
    whose users all have the same value gives them 0.5 (a distance from the ideal: 1 if all reach it)."""
    frame = values[list(INPUT_COLUMNS)].merge(_META, on="input", how="inner")
    frame = frame[frame["value"].notna()]
    if winsorize and not frame.empty:
        frame = _with_bounds(frame, bounds)
        frame["value"] = frame["value"].clip(lower=frame["p5"], upper=frame["p95"])
    low, high = SLEEP_BAND_MINUTES
    band = frame["better"] == Better.ZERO.value
    outside = np.maximum(0.0, np.maximum(low - frame["value"], frame["value"] - high))
    frame["value"] = frame["value"].where(~band, outside)
    groups = frame.groupby(["local_date", "input"], sort=False)["value"]
    users, least, most = groups.transform("count"), groups.transform("min"), groups.transform("max")
    span = most - least
    with np.errstate(divide="ignore", invalid="ignore"):
        higher = np.where(span > 0, (frame["value"] - least) / span, 0.5)
        lower = np.where(span > 0, (most - frame["value"]) / span, 0.5)
        zero = np.where(most > 0, 1.0 - frame["value"] / most, 1.0)
    better = frame["better"].to_numpy()
    frame["normalized"] = np.select(
        [better == Better.HIGHER.value, better == Better.LOWER.value], [higher, lower], default=zero
    )
    return frame[users.to_numpy() >= MIN_COHORT]


def score_days(values: pd.DataFrame, bounds: pd.DataFrame, winsorize: bool = True) -> pd.DataFrame:
    """The scored user-days (``SCORE_COLUMNS``): components 0-100 (NaN when missing), the score 0-100 of the present
    components re-weighted, completeness 0..1, and the users scored that day. User-days with fewer than
    ``MIN_COMPONENTS`` components or a completeness under ``MIN_COMPLETENESS`` have no row."""
    frame = normalize(values, bounds, winsorize)
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype="float64") for name in SCORE_COLUMNS})
    frame = frame.assign(
        weighted=frame["normalized"] * frame["input_weight"],
        full_share=frame["input_weight"] * frame["component_weight"],
    )
    keys = ["user_id", "local_date"]
    per_component = frame.groupby([*keys, "component"], sort=False)[["weighted", "input_weight"]].sum()
    component = (100.0 * per_component["weighted"] / per_component["input_weight"]).unstack("component")
    component = component.reindex(columns=list(COMPONENTS))
    completeness = frame.groupby(keys, sort=False)["full_share"].sum().reindex(component.index)
    weights = pd.Series(COMPONENT_WEIGHTS)[list(COMPONENTS)].to_numpy()
    present = component.notna().to_numpy()
    weight_present = (present * weights).sum(axis=1)
    score = np.nansum(component.to_numpy() * weights, axis=1) / weight_present
    result = component.assign(score=score, completeness=completeness.to_numpy()).reset_index()
    enough = (present.sum(axis=1) >= MIN_COMPONENTS) & (result["completeness"].to_numpy() >= MIN_COMPLETENESS - 1e-9)
    result = result[enough]
    result = result.assign(cohort_users=result.groupby("local_date")["user_id"].transform("count").astype("int64"))
    ordered: pd.DataFrame = result[list(SCORE_COLUMNS)].sort_values(keys, ignore_index=True)
    return ordered
