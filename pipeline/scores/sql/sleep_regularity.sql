-- Sleep regularity: how far the midpoint of the night's main sleep session (the longest asleep) moved from the night
-- before, in minutes (both nights needed; nights with flagged samples left out). Midpoints in minutes after the
-- previous day's local noon on the user's home clock, as the insights' sleep_midpoints.sql computes them.
WITH nights AS (
    SELECT DISTINCT ON (s.user_id, s.local_date)
           s.user_id,
           s.local_date,
           extract(epoch FROM (s.session_start_utc + (s.session_end_utc - s.session_start_utc) / 2)
                                  AT TIME ZONE a.home_timezone
                              - ((s.local_date - 1) + time '12:00'))::float8 / 60.0 AS midpoint
    FROM core.sleep_sessions s
    JOIN app.users a USING (user_id)
    WHERE s.local_date BETWEEN /* first day */ - 1 AND /* last day */
      AND s.flagged_samples = 0
    ORDER BY s.user_id, s.local_date, s.asleep_minutes DESC, s.session_end_utc DESC
)
SELECT n.user_id, n.local_date, 'sleep_regularity' AS input, abs(n.midpoint - p.midpoint) AS value
FROM nights n
JOIN nights p ON p.user_id = n.user_id AND p.local_date = n.local_date - 1
WHERE n.local_date >= /* first day */
