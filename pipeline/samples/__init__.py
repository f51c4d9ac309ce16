"""The samples domain: partitions, assets, checks and the sensors that turn raw samples into deduplicated slices and
hourly/daily aggregates, exposed together by ``definitions.py`` (the dagster-open-platform layout: each domain keeps
these side by side, SQL beside them in ``sql/``)."""
