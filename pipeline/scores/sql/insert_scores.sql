INSERT INTO marts.health_scores
    (user_id, local_date, score, activity, sleep, vitals, completeness, cohort_users, computed_at)
SELECT user_id, local_date, score, activity, sleep, vitals, completeness, cohort_users, now()
FROM health_score_rows
