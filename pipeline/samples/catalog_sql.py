"""The catalogue rendered into SQL: what the queries in ``sql/`` need to know about metrics and sleep stages, as
literals for their ``/* name */`` placeholders (filled by ``io.sql``). The SQL files never list a metric or a stage
themselves, so a metric added to the catalogue reaches them. Constants from the catalogue, never user input."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from pipeline.catalog import ASLEEP_STAGES, CUMULATIVE_METRICS, IN_BED_STAGE, METRICS, SLEEP_METRIC
from pipeline.transform.plausibility import outlier_tested_metrics


def literals(values: Iterable[str]) -> str:
    """``'a', 'b'``: a list of SQL string literals (``NULL`` when empty, so ``IN (...)`` stays valid)."""
    quoted = []
    for value in values:
        if "'" in value:
            raise ValueError(f"not a catalogue name: {value!r}")
        quoted.append(f"'{value}'")
    return ", ".join(quoted) or "NULL"


@cache
def catalog_fragments() -> dict[str, str]:
    """Placeholder name -> SQL text."""
    tests = outlier_tested_metrics()
    return {
        # VALUES rows (metric, strategy): how each metric's value is made from sum, count and latest
        "strategies": ", ".join(f"({literals([m.name])}, {literals([m.strategy.value])})" for m in METRICS.values()),
        "cumulative metrics": literals(CUMULATIVE_METRICS),
        "sleep metric": literals([SLEEP_METRIC]),
        "asleep stages": literals(sorted(ASLEEP_STAGES)),
        "in bed stage": literals([IN_BED_STAGE]),
        # metrics with a per-user outlier test, and how many days around a reading its neighbours are read
        "neighbour metrics": literals(sorted(tests)),
        "neighbour days": str(max((test.window_days for test in tests.values()), default=0)),
    }
