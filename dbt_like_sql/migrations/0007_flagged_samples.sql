-- Plausibility flags (DESIGN §5, end): soft limits and per-user outlier tests flag a sample instead of rejecting it.
-- Flagged samples stay in the data; every aggregate row counts the flagged samples in it, so insights, scores and
-- analysts can leave them out (WHERE flagged_count = 0). core.readings already carries the reasons (flags, text).
-- Rows written before this migration read as unflagged (the defaults) until their partitions are recomputed.
-- ADD COLUMN with a constant default rewrites nothing (PostgreSQL 11+).

ALTER TABLE core.slices ADD COLUMN flagged boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN core.slices.flagged IS
    'the slice''s sample carries a plausibility flag: a soft limit of the validation (e.g. a sleep entry over 14 h), '
    'or, for sleep, its night''s asleep total is over the limit (all samples of such a night are flagged)';

ALTER TABLE core.sleep_sessions ADD COLUMN flagged_samples bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN core.sleep_sessions.flagged_samples IS
    'distinct samples of the night that are flagged: all of them when the night''s asleep total is over the '
    'catalogue''s limit, else those flagged on their own (an entry over its limit)';

ALTER TABLE marts.hourly ADD COLUMN flagged_count bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN marts.hourly.flagged_count IS
    'how many of the row''s samples (count) carry a plausibility flag (core.readings.flags, core.slices.flagged); '
    'latest_value/latest_at are those of the latest unflagged sample when the hour has one';

ALTER TABLE marts.daily ADD COLUMN flagged_count bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN marts.daily.flagged_count IS
    'the sum of the day''s hourly flagged_count (sleep: the flagged samples of the nights ending that day); '
    'latest_value/latest_at come from the latest hour (night) holding an unflagged sample when there is one';

-- The outlier test of body metrics reads a user's neighbouring readings up to 14 days beyond a run's padded window
-- (load_window.sql). These metrics are a sliver of raw.samples: a partial index finds them without scanning the
-- user's other samples of those weeks. Its predicate lists the catalogue's outlier-tested metrics as of this
-- migration; the query names them from the catalogue, and PostgreSQL uses the index while they are among these.
CREATE INDEX samples_neighbour_metrics ON raw.samples (user_id, start_utc) WHERE metric IN ('WEIGHT', 'BODY_FAT');
