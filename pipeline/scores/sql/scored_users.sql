-- The users whose scores a write of these days changes: those scored now, and those whose scores it replaces.
SELECT user_id FROM health_score_rows
UNION
SELECT user_id FROM marts.health_scores WHERE local_date BETWEEN /* first day */ AND /* last day */
