-- Per user with raw samples (all of them, or those in the list users), the first and the last local day of a sample
-- start, widened by a day either side: a night counts for the day it ends, and samples cross midnight.
SELECT s.user_id, min(day) - 1, max(day) + 1
FROM raw.samples s JOIN app.users u USING (user_id)
CROSS JOIN LATERAL (SELECT core.local_day(s.start_utc, s.timezone, u.home_timezone) AS day) d
WHERE %(users)s::text[] IS NULL OR s.user_id = ANY(%(users)s::text[])
GROUP BY s.user_id ORDER BY s.user_id
