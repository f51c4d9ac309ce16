"""Insights: rules over the daily marts, evaluated as of a local day for every user (docs/insights.md)."""
