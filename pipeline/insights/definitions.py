"""The insights domain's Dagster definitions, merged with the other domains' by ``pipeline/definitions.py``."""

from __future__ import annotations

from dagster import Definitions

from pipeline.insights.assets import insights
from pipeline.insights.automation import daily_insights, insights_catch_up, insights_job, insights_late_data
from pipeline.scores.assets import health_scores

defs = Definitions(
    assets=[insights, health_scores],
    jobs=[insights_job],
    schedules=[daily_insights],
    sensors=[insights_late_data, insights_catch_up],
)
