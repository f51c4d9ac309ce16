-- Raw samples that can touch the staged user-days (run_partitions): per user, a UTC window from two days before its
-- first requested day to two days after its last (covers every zone offset, samples up to 24 h long, and nights
-- that began the evening before). One primary-key range scan per user; the rows are put in key order by the caller.
-- Metrics with a per-user outlier test (the catalogue's, filled in by the caller) are read /* neighbour days */ days
-- further each way: a reading is judged against the user's readings up to that far from it. The partial index of
-- migration 0007 finds those few rows without scanning the user's other samples of those weeks.
-- raw.samples is partitioned by month of start_utc (migration 0022). The per-user bounds come from a join, which
-- prunes months only while the query runs; the run's first and last day, filled in by the caller as constants,
-- bound every branch as well, so the plan itself holds only the months the run needs.
WITH windows AS (
    SELECT user_id, min(local_date) AS first_day, max(local_date) AS last_day
    FROM run_partitions
    GROUP BY user_id
)
SELECT s.identity, s.user_id, s.metric, s.value, s.unit, s.stage, s.start_utc, s.end_utc, s.timezone,
       s.source_name, s.device_class, s.source_app
FROM windows w
CROSS JOIN LATERAL (
    SELECT * FROM raw.samples r
    WHERE r.user_id = w.user_id
      AND r.start_utc >= (w.first_day - 2)::timestamp AT TIME ZONE 'UTC'
      AND r.start_utc < (w.last_day + 3)::timestamp AT TIME ZONE 'UTC'
      AND r.start_utc >= (/* first run day */ - 2)::timestamp AT TIME ZONE 'UTC'
      AND r.start_utc < (/* last run day */ + 3)::timestamp AT TIME ZONE 'UTC'
    UNION ALL
    SELECT * FROM raw.samples r
    WHERE r.user_id = w.user_id AND r.metric IN (/* neighbour metrics */)
      AND r.start_utc >= (w.first_day - 2 - /* neighbour days */)::timestamp AT TIME ZONE 'UTC'
      AND r.start_utc < (w.last_day + 3 + /* neighbour days */)::timestamp AT TIME ZONE 'UTC'
      AND r.start_utc >= (/* first run day */ - 2 - /* neighbour days */)::timestamp AT TIME ZONE 'UTC'
      AND r.start_utc < (/* last run day */ + 3 + /* neighbour days */)::timestamp AT TIME ZONE 'UTC'
      AND NOT (r.start_utc >= (w.first_day - 2)::timestamp AT TIME ZONE 'UTC'
               AND r.start_utc < (w.last_day + 3)::timestamp AT TIME ZONE 'UTC')
) AS s
