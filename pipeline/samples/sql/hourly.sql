-- marts.hourly for a set of partitions: winning slices (cumulative metrics; sleep: asleep stages) and kept readings,
-- bucketed by the local hour each row already carries. Inputs: the staged partitions (run_partitions), the catalogue's
-- strategy per metric, the sleep metric and its asleep stages (placeholders filled from pipeline/catalog.py).
-- count = distinct samples; flagged_count = those of them carrying a plausibility flag (a flagged slice or reading:
-- soft limits, outlier tests, a night over its limit); latest = the value with the latest
-- time among the unflagged samples if there is one, else among all (ties: highest identity), so a flagged weight
-- never becomes a LATEST metric's value while the hour has another reading.
-- Slices and readings never share a metric, so each is grouped on its own; the partitions are read in key order and
-- every ordered aggregate uses the same order (flagged first, then at, identity), so PostgreSQL sorts each partition
-- once (incremental sort) instead of sorting the whole set per aggregate. Sums in that fixed order make reruns
-- bit-identical. flagged_count's DISTINCT sorts only the flagged rows (FILTER comes first): nearly none.
WITH parts AS (
    SELECT user_id, local_date FROM run_partitions ORDER BY user_id, local_date
), strategy AS (
    SELECT * FROM (VALUES /* strategies */) AS s(metric, strategy)
), buckets AS (
    SELECT s.user_id, s.local_date, s.metric, s.local_hour, s.hour_start_utc,
           sum(s.value ORDER BY s.flagged DESC, s.slice_end_utc, s.identity) AS sum,
           count(DISTINCT s.identity) AS count, count(DISTINCT s.identity) FILTER (WHERE s.flagged) AS flagged_count,
           min(s.value) AS min, max(s.value) AS max,
           (array_agg(s.value ORDER BY s.flagged DESC, s.slice_end_utc, s.identity))[count(*)::int] AS latest_value,
           coalesce(max(s.slice_end_utc) FILTER (WHERE NOT s.flagged), max(s.slice_end_utc)) AS latest_at
    FROM parts p JOIN core.slices s USING (user_id, local_date)
    WHERE s.won AND (s.metric <> /* sleep metric */ OR s.stage IN (/* asleep stages */))
    GROUP BY s.user_id, s.local_date, s.metric, s.local_hour, s.hour_start_utc
    UNION ALL
    SELECT r.user_id, r.local_date, r.metric, r.local_hour, r.hour_start_utc,
           sum(r.value ORDER BY r.flags IS NULL, r.start_utc, r.identity), count(*),
           count(*) FILTER (WHERE r.flags IS NOT NULL), min(r.value), max(r.value),
           (array_agg(r.value ORDER BY r.flags IS NULL, r.start_utc, r.identity))[count(*)::int],
           coalesce(max(r.start_utc) FILTER (WHERE r.flags IS NULL), max(r.start_utc))
    FROM parts p JOIN core.readings r USING (user_id, local_date)
    WHERE r.kept
    GROUP BY r.user_id, r.local_date, r.metric, r.local_hour, r.hour_start_utc
)
INSERT INTO marts.hourly (user_id, local_date, metric, local_hour, hour_start_utc, value, sum, count, min, max,
                          latest_value, latest_at, flagged_count)
SELECT b.user_id, b.local_date, b.metric, b.local_hour, b.hour_start_utc,
       CASE st.strategy WHEN 'sum' THEN b.sum WHEN 'average' THEN b.sum / b.count ELSE b.latest_value END,
       b.sum, b.count, b.min, b.max, b.latest_value, b.latest_at, b.flagged_count
FROM buckets b JOIN strategy st USING (metric)
