-- raw.samples partitioned by month of start_utc (issue 17; docs/scaling.md, "Partitioned raw store"). A run's load
-- reads only the months of its user-days (load_window.sql names them as constants: plan-time pruning), and old
-- months can be detached whole (`healthpipe db retention --before YYYY-MM`) instead of deleted row by row.
--
-- Months are UTC calendar months, one table each: raw.samples_YYYY_MM, FOR VALUES FROM the month's first instant
-- (UTC) TO the next month's. There is no DEFAULT partition: a row lands only in its month's table, which the landing
-- creates first (raw.add_sample_months); a month a default partition held rows of could not be added later without
-- moving them. The landing accepts instants from 1970 to tomorrow (pipeline/ingest/landing.py), so no file can make
-- more than one table per month of that span.
--
-- The existing rows move in this transaction (the migration runner runs each file in one): the old table is renamed,
-- the partitioned one created with the same columns, defaults, constraints, indexes and comments, the months the old
-- rows need created, the rows copied, the counts compared (a difference aborts the migration and changes nothing),
-- and the old table dropped. raw has no grants (the analyst role reads core and marts only, migration 0009): the new
-- tables get none either.

ALTER TABLE raw.samples RENAME TO samples_unpartitioned;
ALTER INDEX raw.samples_pkey RENAME TO samples_unpartitioned_pkey;
ALTER INDEX raw.samples_batch RENAME TO samples_unpartitioned_batch;
ALTER INDEX raw.samples_neighbour_metrics RENAME TO samples_unpartitioned_neighbour_metrics;

-- the columns in the order they had (0002, 0018's metadata_chunk and metadata_slot last)
CREATE TABLE raw.samples (
    identity        uuid NOT NULL,
    user_id         text NOT NULL,
    metric          text NOT NULL,
    value           double precision NOT NULL,
    unit            text NOT NULL,
    stage           text,
    start_utc       timestamptz NOT NULL,
    end_utc         timestamptz NOT NULL,
    timezone        text,
    source_name     text NOT NULL,
    device_class    text NOT NULL,
    source_app      text,
    device          text,
    external_id     text,
    batch_id        bigint NOT NULL,
    landed_at       timestamptz NOT NULL DEFAULT now(),
    metadata_chunk  uuid,
    metadata_slot   integer,
    CONSTRAINT samples_check CHECK (end_utc >= start_utc),
    CONSTRAINT samples_pkey PRIMARY KEY (user_id, start_utc, identity)
) PARTITION BY RANGE (start_utc);
CREATE INDEX samples_batch ON raw.samples USING brin (batch_id);
CREATE INDEX samples_neighbour_metrics ON raw.samples (user_id, start_utc) WHERE metric IN ('WEIGHT', 'BODY_FAT');

COMMENT ON TABLE raw.samples IS
    'samples as received, append-only; partitioned by UTC month of start_utc (raw.samples_YYYY_MM, made by the '
    'landing); months detached by `healthpipe db retention` are in schema raw_archive';
COMMENT ON COLUMN raw.samples.identity IS
    'md5 of user|metric|source_name|device|start us|end us|value text|unit|stage|external_id; where source_app is '
    'set, md5 of that hex || ''|'' || source_app. Same identity = same sample: a repeat lands nothing';
COMMENT ON COLUMN raw.samples.metadata_chunk IS 'raw.sealed_chunks holding this sample''s metadata; NULL: none';
COMMENT ON COLUMN raw.samples.metadata_slot IS 'position of this sample''s metadata in its sealed chunk';

-- Detached months: whole tables, kept (never deleted), out of every reader's sight but the erasure's (it walks every
-- table with a user_id column). No grants, like raw.
CREATE SCHEMA raw_archive;
COMMENT ON SCHEMA raw_archive IS
    'Months of raw.samples detached by `healthpipe db retention` (samples_YYYY_MM): kept, no longer read';

-- The retention cutoff: samples starting before it are no longer landed (quarantined instead) and the local days up
-- to its first one are no longer recomputed (their core and marts rows stay as they were computed). One row at most.
CREATE TABLE raw.sample_retention (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    before    date NOT NULL CHECK (before = date_trunc('month', before)::date),
    set_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE raw.sample_retention IS
    'months of raw.samples before `before` are detached into raw_archive (`healthpipe db retention`)';

-- The month tables for `months` (any day of each) that do not exist yet, none before the retention cutoff; returns
-- how many were made. Set-based callers pass the distinct months of a whole chunk. Without a missing month it takes
-- no lock. Else, under a transaction-scoped advisory lock (two imports needing the same new month make it once), each
-- month is made as a plain table and then attached: ATTACH takes only SHARE UPDATE EXCLUSIVE on raw.samples, so the
-- pipeline's reads and other imports' inserts go on (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE).
-- Attaching builds the partitioned indexes on the (empty) table.
CREATE FUNCTION raw.add_sample_months(months date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    missing date[];
    month date;
    name text;
    added integer := 0;
BEGIN
    SELECT array_agg(m ORDER BY m) INTO missing
    FROM (SELECT DISTINCT date_trunc('month', d)::date AS m FROM unnest(months) AS d WHERE d IS NOT NULL) wanted
    WHERE m >= (SELECT coalesce(max(before), '-infinity'::date) FROM raw.sample_retention)
      AND to_regclass(format('raw.%I', 'samples_' || to_char(m, 'YYYY_MM'))) IS NULL;
    IF missing IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(1380013907);  -- 'RAWS': shared with `healthpipe db retention`
    FOREACH month IN ARRAY missing LOOP
        name := 'samples_' || to_char(month, 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('raw.%I', name)) IS NOT NULL;  -- made meanwhile by another session
        EXECUTE format('CREATE TABLE raw.%I (LIKE raw.samples INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
        EXECUTE format('ALTER TABLE raw.samples ATTACH PARTITION raw.%I FOR VALUES FROM (%L) TO (%L)', name,
                       to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
        added := added + 1;
    END LOOP;
    RETURN added;
END
$$;
COMMENT ON FUNCTION raw.add_sample_months(date[]) IS
    'makes and attaches raw.samples_YYYY_MM for each month given that has none (none before the retention cutoff)';

SELECT raw.add_sample_months(
    ARRAY(SELECT DISTINCT date_trunc('month', start_utc AT TIME ZONE 'UTC')::date FROM raw.samples_unpartitioned)
);

INSERT INTO raw.samples (identity, user_id, metric, value, unit, stage, start_utc, end_utc, timezone, source_name,
                         device_class, source_app, device, external_id, batch_id, landed_at, metadata_chunk,
                         metadata_slot)
SELECT identity, user_id, metric, value, unit, stage, start_utc, end_utc, timezone, source_name, device_class,
       source_app, device, external_id, batch_id, landed_at, metadata_chunk, metadata_slot
FROM raw.samples_unpartitioned;

DO $$
DECLARE
    before_count bigint;
    after_count bigint;
BEGIN
    SELECT count(*) INTO before_count FROM raw.samples_unpartitioned;
    SELECT count(*) INTO after_count FROM raw.samples;
    IF before_count <> after_count THEN
        RAISE EXCEPTION 'raw.samples: % rows before partitioning, % after; nothing was changed',
            before_count, after_count;
    END IF;
END
$$;

DROP TABLE raw.samples_unpartitioned;
