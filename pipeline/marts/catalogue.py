"""The metric catalogue as the dbt project gets it (the var ``metrics``): one row per metric with what the marts need
(``marts.metrics``, the columns of ``marts.daily_wide``). Rendered from ``pipeline/catalog.py``, never written out
again, so a metric added there reaches every model."""

from __future__ import annotations

import re

from pipeline.catalog import METRICS, Kind, Metric, Strategy

# How a canonical unit reads in a column name; other units are used as spelled (non-alphanumerics become "_").
_UNIT_IN_NAME = {"count": "", "min": "minutes", "%": "pct"}
_MEANING = {
    Strategy.SUM: "the total of the period's samples, split pro rata where a sample spans a boundary",
    Strategy.AVERAGE: "the mean of the period's readings (sum / count), never a mean of means",
    Strategy.LATEST: "the period's latest reading, the latest unflagged one when there is one",
}
_SLEEP_MEANING = "minutes asleep; a day holds the nights that end on it (wake-up day), a period the sum of its days"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def wide_column(metric: Metric) -> str:
    """The metric's column in ``marts.daily_wide``: its display name, ``avg`` for averaged metrics, and its canonical
    unit (``steps``, ``distance_m``, ``heart_rate_avg_bpm``, ``sleep_minutes``)."""
    unit = _UNIT_IN_NAME.get(metric.canonical_unit, _slug(metric.canonical_unit))
    parts = [_slug(metric.display_name), "avg" if metric.strategy == Strategy.AVERAGE else "", unit]
    return "_".join(part for part in parts if part)


def value_meaning(metric: Metric) -> str:
    return _SLEEP_MEANING if metric.kind == Kind.INTERVAL else _MEANING[metric.strategy]


def catalogue_rows() -> list[dict[str, str | None]]:
    """The catalogue, one dict per metric in catalogue order (the columns of ``marts.metrics``)."""
    return [
        {
            "metric": m.name,
            "display_name": m.display_name,
            "unit": m.canonical_unit,
            "ucum": m.ucum_unit,
            "aggregation": m.strategy.value,
            "value_meaning": value_meaning(m),
            "loinc": m.loinc_sample,
            "loinc_daily": m.loinc_daily,
            "column": wide_column(m),
        }
        for m in METRICS.values()
    ]
