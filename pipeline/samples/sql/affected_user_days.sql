-- The (user, local day) partitions that samples of newly landed batches can change: the local day of each sample's
-- start (its own zone, else the user's home zone), plus the days either side (samples crossing midnight, nights
-- counted on the wake-up day, a traveller's zone). Also whether that day is still open in the user's zone.
SELECT DISTINCT s.user_id, d.local_date, d.local_date >= (now() AT TIME ZONE u.home_timezone)::date AS still_open
FROM raw.samples s
JOIN app.users u USING (user_id)
CROSS JOIN LATERAL (SELECT core.local_day(s.start_utc, s.timezone, u.home_timezone)) AS start_day(day)
CROSS JOIN LATERAL (VALUES (start_day.day - 1), (start_day.day), (start_day.day + 1)) AS d(local_date)
WHERE s.batch_id > %(after)s AND s.batch_id <= %(upto)s
