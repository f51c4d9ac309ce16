-- A day's scores are replaced as a whole: its cohort is every user of the day.
DELETE FROM marts.health_scores WHERE local_date BETWEEN /* first day */ AND /* last day */;
