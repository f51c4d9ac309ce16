-- The user's daily aggregates (marts.daily), one row per local day and metric, values in the catalogue's units.
SELECT local_date, metric, value, sum, count, min, max, latest_value, latest_at, flagged_count
FROM marts.daily
WHERE user_id = {user}
ORDER BY local_date, metric
