"""healthpipe: a batch pipeline for personal health data (Dagster assets over PostgreSQL)."""
