-- The midpoint of each night's main sleep session (the longest asleep; ties: the later), in minutes after the
-- previous day's local noon (so 03:00 is 900 whether the night crossed midnight or not), on the user's home clock.
-- Nights with flagged samples are left out.
SELECT DISTINCT ON (s.user_id, s.local_date)
       s.user_id,
       s.local_date,
       extract(epoch FROM (s.session_start_utc + (s.session_end_utc - s.session_start_utc) / 2)
                              AT TIME ZONE a.home_timezone
                          - ((s.local_date - 1) + time '12:00'))::float8 / 60.0 AS midpoint_minutes
FROM core.sleep_sessions s
JOIN insight_users u USING (user_id)
JOIN app.users a USING (user_id)
WHERE s.local_date BETWEEN /* first day */ AND /* last day */
  AND s.flagged_samples = 0
ORDER BY s.user_id, s.local_date, s.asleep_minutes DESC, s.session_end_utc DESC
