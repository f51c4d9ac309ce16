"""Metric type names a client sends (aggregates' ``types``, a share's types): catalogue names only."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.catalog import METRICS


def metric_names(named: Iterable[str]) -> list[str]:
    """The names in order, each once; ValueError naming the unknown ones, or asking for one when there is none."""
    names = list(dict.fromkeys(named))
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown type(s) {', '.join(map(repr, unknown))}; known: {', '.join(METRICS)}")
    if not names:
        raise ValueError(f"name at least one type: {', '.join(METRICS)}")
    return names


def listed_metric_names(types: str) -> list[str]:
    """`metric_names` of a comma-separated list, as the ``types`` query parameters take it."""
    return metric_names(name.strip() for name in types.split(",") if name.strip())
