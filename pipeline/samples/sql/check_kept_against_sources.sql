-- kept_never_above_raw_sum and kept_not_below_largest_source: per user, day and cumulative metric, what was kept
-- against what all sources reported (above their sum, beyond float rounding) and against the largest source (below
-- 99 % of it).
SELECT count(*) FILTER (WHERE kept > raw * (1 + /* tolerance */) + /* tolerance */) AS above_raw_sum,
       count(*) FILTER (WHERE kept < largest * 0.99) AS below_largest_source
FROM (
    SELECT sum(t.kept) AS kept, sum(t.raw) AS raw, max(t.raw) AS largest
    FROM core.source_totals t /* run partitions of t */
    WHERE t.metric IN (/* cumulative metrics */)
    GROUP BY t.user_id, t.local_date, t.metric
) d
