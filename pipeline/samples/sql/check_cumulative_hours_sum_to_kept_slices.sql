-- cumulative_hours_sum_to_kept_slices: per user, day and cumulative metric, the hours' sum against what
-- deduplication kept (core.source_totals.kept: the winning slices' values), above it and below it.
SELECT count(*) FILTER (WHERE hours > kept + /* tolerance */ * greatest(1, abs(kept))),
       count(*) FILTER (WHERE hours < kept - /* tolerance */ * greatest(1, abs(kept)))
FROM (
    SELECT coalesce(h.total, 0) AS hours, coalesce(k.total, 0) AS kept
    FROM (SELECT t.user_id, t.local_date, t.metric, sum(t.sum) AS total FROM marts.hourly t /* run partitions of t */
          WHERE t.metric IN (/* cumulative metrics */) GROUP BY 1, 2, 3) h
    FULL JOIN (SELECT t.user_id, t.local_date, t.metric, sum(t.kept) AS total
               FROM core.source_totals t /* run partitions of t */
               WHERE t.metric IN (/* cumulative metrics */) GROUP BY 1, 2, 3) k
      USING (user_id, local_date, metric)
) d
