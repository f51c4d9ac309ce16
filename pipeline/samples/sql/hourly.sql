-- marts.hourly for a set of partitions: winning slices (cumulative metrics; sleep: asleep stages) and kept readings,
-- bucketed by the local hour each row already carries. Parameters: partitions (users, days), the catalogue's
-- strategy per metric. count = distinct samples; latest = the value with the latest time (ties: highest identity).
WITH parts AS (
    SELECT * FROM unnest(%(users)s::text[], %(days)s::date[]) AS p(user_id, local_date)
), strategy AS (
    SELECT * FROM unnest(%(metrics)s::text[], %(strategies)s::text[]) AS s(metric, strategy)
), points AS (
    SELECT s.user_id, s.local_date, s.metric, s.local_hour, s.hour_start_utc, s.value AS amount,
           s.slice_end_utc AS at, s.identity
    FROM core.slices s JOIN parts USING (user_id, local_date)
    WHERE s.won AND (s.metric <> 'SLEEP_ANALYSIS' OR s.stage IN ('asleep', 'core', 'deep', 'rem'))
    UNION ALL
    SELECT r.user_id, r.local_date, r.metric, r.local_hour, r.hour_start_utc, r.value, r.start_utc, r.identity
    FROM core.readings r JOIN parts USING (user_id, local_date)
    WHERE r.kept
), buckets AS (
    SELECT user_id, local_date, metric, local_hour, hour_start_utc,
           sum(amount ORDER BY at, identity) AS sum, count(DISTINCT identity) AS count, min(amount) AS min,
           max(amount) AS max,
           (array_agg(amount ORDER BY at DESC, identity DESC))[1] AS latest_value, max(at) AS latest_at
    FROM points
    GROUP BY user_id, local_date, metric, local_hour, hour_start_utc
)
INSERT INTO marts.hourly (user_id, local_date, metric, local_hour, hour_start_utc, value, sum, count, min, max,
                          latest_value, latest_at)
SELECT b.user_id, b.local_date, b.metric, b.local_hour, b.hour_start_utc,
       CASE st.strategy WHEN 'sum' THEN b.sum WHEN 'average' THEN b.sum / b.count ELSE b.latest_value END,
       b.sum, b.count, b.min, b.max, b.latest_value, b.latest_at
FROM buckets b JOIN strategy st USING (metric)
