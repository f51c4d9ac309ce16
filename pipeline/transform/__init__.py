"""Pure transformations of the pipeline: deduplication, local time, aggregation."""
