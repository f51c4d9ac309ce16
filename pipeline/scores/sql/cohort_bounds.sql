-- The winsorizing bounds: the cohort's 5th and 95th percentiles of each input's metric on each day scored.
SELECT c.local_date, m.input, c.p5, c.p95
FROM marts.cohort_daily c
JOIN (VALUES /* metric inputs */) AS m (metric, input) USING (metric)
WHERE c.local_date BETWEEN /* first day */ AND /* last day */
