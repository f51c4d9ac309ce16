INSERT INTO marts.health_score_days (local_date, scored_users, computed_at)
SELECT g.day::date, count(s.user_id), now()
FROM generate_series(/* first day */, /* last day */, interval '1 day') AS g (day)
LEFT JOIN health_score_rows s ON s.local_date = g.day::date
GROUP BY g.day
ON CONFLICT (local_date) DO UPDATE SET scored_users = excluded.scored_users, computed_at = excluded.computed_at
