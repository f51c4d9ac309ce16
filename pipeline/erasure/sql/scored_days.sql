-- Of the given days, those the health score has scored (a day never scored is left for the score's own schedule).
SELECT local_date FROM marts.health_score_days WHERE local_date = ANY(%(days)s::date[]) ORDER BY local_date
