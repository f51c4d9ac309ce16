"""The samples domain: partitions, assets, checks and the sensor that turn raw samples into deduplicated slices and
hourly/daily aggregates (the dagster-open-platform layout: each domain keeps these side by side, SQL beside them)."""
