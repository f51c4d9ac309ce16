-- Episodes the evaluated days touched that no longer exist as they were (late data moved their first day, or showed
-- the condition never held): withdrawn. A condition that clears is resolved instead (upsert_episodes.sql).
DELETE FROM marts.insights i
USING insight_users u
WHERE i.user_id = u.user_id
  AND i.last_evaluated_day >= /* first day */ - 1 AND i.first_evaluated_day <= /* last day */ + 1
  AND NOT EXISTS (SELECT 1 FROM insight_episodes n WHERE n.insight_id = i.insight_id)
