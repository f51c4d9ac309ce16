-- Glucose per user-day from the kept readings: how many, how many in 70-180 mg/dL and below 70, and in how many
-- hours. A day with a flagged reading is left out whole.
SELECT r.user_id,
       r.local_date,
       count(*)::float8 AS readings,
       (count(*) FILTER (WHERE r.value BETWEEN /* low */ AND /* high */))::float8 AS in_range,
       (count(*) FILTER (WHERE r.value < /* low */))::float8 AS below,
       count(DISTINCT r.hour_start_utc)::float8 AS hours
FROM core.readings r
JOIN insight_users u USING (user_id)
WHERE r.local_date BETWEEN /* first day */ AND /* last day */
  AND r.metric = /* glucose metric */
  AND r.kept
GROUP BY r.user_id, r.local_date
HAVING count(*) FILTER (WHERE r.flags IS NOT NULL) = 0
