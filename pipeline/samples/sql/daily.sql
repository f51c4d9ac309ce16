-- marts.daily for a set of partitions: an exact roll-up of marts.hourly (sums and counts add, min of mins, max of
-- maxes, the latest of the latest; sums in a fixed order, so reruns are bit-identical), except sleep, which counts each night for the day it ends (wake-up day).
-- flagged_count adds up the hours' (sleep: the nights' flagged samples). The latest comes from the latest hour that
-- holds an unflagged sample (flagged_count < count) when there is one, else from the latest hour (sleep: the latest
-- night without flagged samples, else the latest night), as in marts.hourly.
WITH parts AS (
    SELECT user_id, local_date FROM run_partitions
), strategy AS (
    SELECT * FROM (VALUES /* strategies */) AS s(metric, strategy)
), rolled AS (
    SELECT h.user_id, h.local_date, h.metric, sum(h.sum ORDER BY h.hour_start_utc, h.local_hour) AS sum,
           sum(h.count) AS count, min(h.min) AS min,
           max(h.max) AS max,
           (array_agg(h.latest_value
                      ORDER BY (h.flagged_count < h.count) DESC, h.latest_at DESC, h.hour_start_utc DESC))[1]
               AS latest_value,
           coalesce(max(h.latest_at) FILTER (WHERE h.flagged_count < h.count), max(h.latest_at)) AS latest_at,
           sum(h.flagged_count) AS flagged_count
    FROM marts.hourly h JOIN parts USING (user_id, local_date)
    WHERE h.metric <> /* sleep metric */
    GROUP BY h.user_id, h.local_date, h.metric
    UNION ALL
    SELECT n.user_id, n.local_date, /* sleep metric */, sum(n.asleep_minutes ORDER BY n.session_end_utc), count(*),
           min(n.asleep_minutes),
           max(n.asleep_minutes),
           (array_agg(n.asleep_minutes ORDER BY (n.flagged_samples = 0) DESC, n.session_end_utc DESC))[1],
           coalesce(max(n.session_end_utc) FILTER (WHERE n.flagged_samples = 0), max(n.session_end_utc)),
           sum(n.flagged_samples)
    FROM core.sleep_sessions n JOIN parts USING (user_id, local_date)
    GROUP BY n.user_id, n.local_date
)
INSERT INTO marts.daily (user_id, local_date, metric, value, sum, count, min, max, latest_value, latest_at,
                         flagged_count)
SELECT r.user_id, r.local_date, r.metric,
       CASE st.strategy WHEN 'sum' THEN r.sum WHEN 'average' THEN r.sum / r.count ELSE r.latest_value END,
       r.sum, r.count, r.min, r.max, r.latest_value, r.latest_at, r.flagged_count
FROM rolled r JOIN strategy st USING (metric)
