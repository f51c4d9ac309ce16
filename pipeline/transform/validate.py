"""The validate step: canonical units, then Great Expectations 1.x suites per metric built from the catalogue.

Hard limits reject a sample (it goes to ``core.rejections`` with its reason); soft limits only flag it. The suites
are generated from `pipeline.catalog.METRICS`, so the catalogue stays the single source of the ranges. GX runs
directly (the dagster-ge integration pins GX < 1): an ephemeral context per validation (one chunk), a pandas data
source, ``ValidationDefinition.run(batch_parameters={"dataframe": ...})`` with complete results, whose unexpected
index lists name the failing rows. GX orders the results by column, not as the suite lists them, so each result is
paired with its rule by what it checks (expectation type, column, bounds), never by position.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.catalog import METRICS, Limits, Metric, canonical_factors

if TYPE_CHECKING:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class Rule:
    column: str  # "value" (canonical) or "duration_hours"
    low: float | None
    high: float | None
    hard: bool

    def describe(self, metric: Metric) -> str:
        unit = metric.canonical_unit if self.column == "value" else "h"
        what = "duration" if self.column == "duration_hours" else "value"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        kind = "plausible" if self.hard else "usual"
        return f"{metric.name} {what} outside the {kind} range {low}..{high} {unit}"


def rules_for(metric: Metric) -> list[Rule]:
    limits: Limits = metric.limits
    rules = [Rule("value", limits.hard_min, limits.hard_max, hard=True)]
    if limits.max_duration_hours is not None:
        rules.append(Rule("duration_hours", 0.0, limits.max_duration_hours, hard=True))
    if limits.soft_min is not None or limits.soft_max is not None:
        rules.append(Rule("value", limits.soft_min, limits.soft_max, hard=False))
    if limits.soft_max_duration_hours is not None:  # e.g. a sleep entry over 14 h: flagged, kept
        rules.append(Rule("duration_hours", None, limits.soft_max_duration_hours, hard=False))
    return rules


@dataclass
class ValidationReport:
    accepted: pd.DataFrame  # input columns + value (canonical), flags
    rejected: pd.DataFrame  # identity, user_id, metric, reason
    suites: dict[str, dict[str, Any]] = field(default_factory=dict)  # per metric: expectations evaluated, failures

    @property
    def pass_rate(self) -> float:
        total = len(self.accepted) + len(self.rejected)
        return len(self.accepted) / total if total else 1.0


class _Suites:
    """One ephemeral GX context per validation (per chunk of samples): a pandas data source, and per metric a
    dataframe asset, its suite and a validation definition. (A context per metric cost ~40 ms each.)"""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        self._gx = gx
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm bars in logs
        self._source = self._context.data_sources.add_pandas("samples")

    def run(self, metric: Metric, frame: pd.DataFrame) -> list[tuple[Rule, np.ndarray]]:
        """Evaluate the metric's suite on ``frame`` (RangeIndex); returns (rule, failing positions) per rule."""
        gx = self._gx
        rules = rules_for(metric)
        batch = self._source.add_dataframe_asset(metric.name).add_batch_definition_whole_dataframe("all")
        suite = self._context.suites.add(gx.ExpectationSuite(name=f"{metric.name.lower()}_plausibility"))
        identities = []
        for rule in rules:
            expectation = suite.add_expectation(
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column=rule.column, min_value=rule.low, max_value=rule.high
                )
            )
            identities.append(_identity(expectation.configuration))
        definition = self._context.validation_definitions.add(
            gx.ValidationDefinition(name=metric.name, data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        # GX returns results grouped by column, not in the suite's order: pair them by what they check
        outcomes = {_identity(o.expectation_config): o for o in result.results if o.expectation_config}
        failing = []
        for rule, identity in zip(rules, identities, strict=True):
            outcome = outcomes.get(identity)
            if outcome is None:
                raise LookupError(f"no Great Expectations result for {rule.describe(metric)}")
            indexes = outcome.result.get("unexpected_index_list") or []
            failing.append((rule, np.asarray(indexes, dtype=np.int64)))
        return failing


def _identity(configuration: ExpectationConfiguration) -> str:
    """What an expectation checks (its type and arguments: column, bounds), without the batch it ran on: the key
    that pairs a result with its rule."""
    checked = {k: v for k, v in configuration.kwargs.items() if k != "batch_id"}
    return json.dumps([configuration.type, checked], sort_keys=True, default=str)


def validate(samples: pd.DataFrame) -> ValidationReport:
    """``samples``: raw rows (value and unit as received). Returns canonical accepted rows and rejects."""
    frame = samples.reset_index(drop=True)
    factors = canonical_factors(frame["metric"], frame["unit"], frame["value"])
    frame = frame.assign(
        value=frame["value"] * factors,
        duration_hours=(frame["end_utc"] - frame["start_utc"]).dt.total_seconds() / 3600.0,
    )
    reasons = pd.Series("", index=frame.index, dtype=object)
    flags = pd.Series("", index=frame.index, dtype=object)
    suites: dict[str, dict[str, Any]] = {}
    gx_suites = _Suites()
    for name, positions in frame.groupby("metric", observed=True).indices.items():
        metric = METRICS[str(name)]
        subset = frame.loc[positions, ["value", "duration_hours"]].reset_index(drop=True)
        failures = gx_suites.run(metric, subset)
        suites[metric.name] = {
            "rows": len(subset),
            "expectations": len(failures),
            "failed_rows": {r.describe(metric): int(f.size) for r, f in failures},
        }
        for rule, failing in failures:
            target = reasons if rule.hard else flags
            rows = positions[failing]
            text = rule.describe(metric)
            current = target.to_numpy()[rows]
            target.iloc[rows] = np.where(current == "", text, current + "; " + text)  # type: ignore[call-overload]
    unconvertible = factors.isna()
    reasons[unconvertible] = "unit not convertible to the canonical unit"
    bad = reasons != ""
    accepted = frame[~bad].drop(columns=["duration_hours"]).assign(flags=flags[~bad].replace("", None))
    rejected = frame.loc[bad, ["identity", "user_id", "metric"]].assign(reason=reasons[bad])
    return ValidationReport(accepted, rejected, suites)
