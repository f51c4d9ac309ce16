-- Layers of the warehouse (DESIGN §2). Data tables arrive in later migrations.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS app;
-- Dagster's instance storage (runs, event log, schedules) lives here unless HEALTHPIPE_DAGSTER_DATABASE_URL says otherwise.
CREATE SCHEMA IF NOT EXISTS dagster;

COMMENT ON SCHEMA raw IS 'Landing: samples as received, append-only, plus quarantined rejects';
COMMENT ON SCHEMA core IS 'Validated, unit-normalised, deduplicated samples';
COMMENT ON SCHEMA marts IS 'Hourly and daily aggregates, insights, scores: what analysts and the API read';
COMMENT ON SCHEMA app IS 'Users, devices, API keys, share tokens, ingest batches';
COMMENT ON SCHEMA dagster IS 'Dagster instance storage (dagster-postgres)';
