"""The validate step: every Great Expectations result is matched to its own rule (hard rejects, soft flags)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.catalog import METRICS, Metric
from pipeline.transform.validate import Rule, rules_for, validate

START = pd.Timestamp("2024-05-01 08:00", tz="UTC")


def rows(metric: str, values_and_hours: list[tuple[float, float]]) -> pd.DataFrame:
    """One raw row per (canonical value, duration in hours); percentages are sent as fractions (Apple's way)."""
    percent = bool(METRICS[metric].fraction_units)
    return pd.DataFrame(
        {
            "identity": [str(i) for i in range(len(values_and_hours))],
            "user_id": "u",
            "metric": metric,
            "value": [v / 100.0 if percent else v for v, _ in values_and_hours],
            "unit": "fraction" if percent else METRICS[metric].canonical_unit,
            "start_utc": START,
            "end_utc": [START + pd.Timedelta(hours=h) for _, h in values_and_hours],
        }
    )


def test_a_cumulative_sample_is_rejected_or_flagged_for_what_is_wrong_with_it() -> None:
    report = validate(rows("STEPS", [(60_000, 1.0), (200, 30.0), (300, 1.0), (120_000, 1.0)]))
    rejected = dict(zip(report.rejected["identity"], report.rejected["reason"], strict=True))
    assert rejected == {
        "1": "STEPS duration outside the plausible range 0..24 h",
        "3": "STEPS value outside the plausible range 0..100000 count",
    }
    flags = dict(zip(report.accepted["identity"], report.accepted["flags"], strict=True))
    assert flags == {"0": "STEPS value outside the usual range -inf..50000 count", "2": None}
    assert report.accepted["value"].tolist() == [60_000.0, 300.0]
    assert report.suites["STEPS"]["failed_rows"] == {
        "STEPS value outside the plausible range 0..100000 count": 1,
        "STEPS duration outside the plausible range 0..24 h": 1,
        "STEPS value outside the usual range -inf..50000 count": 2,  # 120,000 too, but a rejected row has no flags
    }


def _inside(rules: list[Rule], column: str, default: float) -> float:
    """A value of ``column`` that no rule on it objects to."""
    lows = [r.low for r in rules if r.column == column and r.low is not None]
    highs = [r.high for r in rules if r.column == column and r.high is not None]
    if lows and highs:
        return (max(lows) + min(highs)) / 2
    return max(lows) + 1.0 if lows else (min(highs) / 2 if highs else default)


def _outside(rule: Rule) -> float:
    """Just beyond one of the rule's bounds (a thousandth of the bound, so past a soft bound is not past a hard one)."""
    if rule.high is not None:
        return rule.high + max(abs(rule.high) * 1e-3, 1e-3)
    assert rule.low is not None
    return rule.low - max(abs(rule.low) * 1e-3, 1e-3)


@pytest.mark.parametrize("metric", list(METRICS.values()), ids=list(METRICS))
def test_each_rule_rejects_or_flags_its_own_row_with_its_own_reason(metric: Metric) -> None:
    """One row breaking each rule of the metric, and one clean row: every row carries exactly its rule's reason."""
    rules = rules_for(metric)
    good_value = _inside(rules, "value", 1.0)
    good_hours = _inside(rules, "duration_hours", 0.0)
    cases = [(_outside(r), good_hours) if r.column == "value" else (good_value, _outside(r)) for r in rules] + [
        (good_value, good_hours)
    ]
    report = validate(rows(metric.name, cases))

    rejected = dict(zip(report.rejected["identity"], report.rejected["reason"], strict=True))
    flags = dict(zip(report.accepted["identity"], report.accepted["flags"], strict=True))
    for i, rule in enumerate(rules):
        if rule.hard:
            assert rejected.get(str(i)) == rule.describe(metric), rule
        else:
            assert flags.get(str(i)) == rule.describe(metric), rule
    assert set(rejected) == {str(i) for i, r in enumerate(rules) if r.hard}
    assert set(flags) == {str(i) for i, r in enumerate(rules) if not r.hard} | {str(len(rules))}
    assert flags[str(len(rules))] is None
