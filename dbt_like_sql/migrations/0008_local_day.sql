-- The local day of a sample, in one place: the calendar date of its start on the wall clock of its own zone when it
-- carries a zone name, else of the user's home zone (a sample written with an offset, or none, counts in the home
-- zone here; the pipeline resolves such zones more finely, this is the day a sample is looked up by). Used by the
-- batch sensor (the user-days a batch touches) and by recompute requests (a user's first and last day with data).
--
-- STABLE, not IMMUTABLE: PostgreSQL declares AT TIME ZONE immutable, but its answer follows the server's time zone
-- rules, which change when tzdata is updated (a country moving its clocks). STABLE is also what lets the planner
-- inline this one-expression function into the queries that call it, as if the expression were written there.
CREATE FUNCTION core.local_day(start_utc timestamptz, sample_zone text, home_zone text) RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (start_utc AT TIME ZONE CASE WHEN sample_zone ~ '^[A-Za-z]' THEN sample_zone ELSE home_zone END)::date;

COMMENT ON FUNCTION core.local_day(timestamptz, text, text) IS
    'the local date of a sample''s start: in its own zone when it names one, else in the user''s home zone';
