-- A few rows of a mart (the placeholder "mart": marts.hourly or marts.daily) for one user-day, shown with a run's
-- materialization.
SELECT user_id, local_date, metric, round(value::numeric, 2) FROM /* mart */
WHERE user_id = %(user)s AND local_date = %(day)s ORDER BY metric LIMIT 12
