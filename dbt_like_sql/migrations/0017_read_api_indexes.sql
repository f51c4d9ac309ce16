-- Indexes for the read API's queries, measured at 1,000 users x a year of daily data (benchmarks/api_read.py).
--
-- The aggregates of a year of days read one row per day per type from marts.daily. Through its primary key (user,
-- day, metric) each of those rows sits on its own heap page (the pipeline writes the marts a day of every user at a
-- time), so a year of three types read ~400 pages and took ~25 ms whenever they were not cached. This index holds
-- every column the route returns, in (user, metric, day) order: an index-only scan of ~35 pages (~1 ms).
CREATE INDEX daily_by_user_metric ON marts.daily (user_id, metric, local_date)
    INCLUDE (value, sum, count, min, max, flagged_count);

-- The summary's freshness asks for the user's latest finished batch that landed anything. Without an index on the
-- user it walked app.ingest_batches back from the newest batch: ~0.5 s for a user with no recent batch at 365,000
-- batches. This partial index finds the user's latest one (and the latest of several users' batches, user_id NULL)
-- in a few pages.
CREATE INDEX ingest_batches_landed_by_user ON app.ingest_batches (user_id, batch_id)
    WHERE finished_at IS NOT NULL AND landed_count > 0;
