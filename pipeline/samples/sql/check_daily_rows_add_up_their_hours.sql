-- hourly_sums_equal_daily: marts.daily rows whose value is not the sum of their hours' (cumulative metrics), and
-- rows whose flagged_count is not the sum of their hours' (every metric but sleep, counted by wake-up day).
SELECT count(*) FILTER (WHERE t.metric IN (/* cumulative metrics */)
                          AND abs(t.value - h.total) > /* tolerance */ * greatest(1, abs(h.total))),
       count(*) FILTER (WHERE t.flagged_count <> h.flagged)
FROM marts.daily t /* run partitions of t */
JOIN (SELECT t.user_id, t.local_date, t.metric, sum(t.sum) AS total, sum(t.flagged_count) AS flagged
      FROM marts.hourly t /* run partitions of t */ WHERE t.metric <> /* sleep metric */ GROUP BY 1, 2, 3) h
  ON h.user_id = t.user_id AND h.local_date = t.local_date AND h.metric = t.metric
