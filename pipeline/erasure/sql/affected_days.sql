-- The local days whose cross-user results included the user: a daily value in the cohort statistics
-- (marts.cohort_daily is built from marts.daily) or a score in the day's cohort normalization (marts.health_scores).
SELECT local_date FROM marts.daily WHERE user_id = %(user_id)s
UNION
SELECT local_date FROM marts.health_scores WHERE user_id = %(user_id)s
ORDER BY local_date
