-- New episodes are inserted, changed ones updated (updated_at moves only when something changed: a recompute of the
-- same day writes nothing), acknowledged_at and created_at are never written here.
INSERT INTO marts.insights AS i (insight_id, user_id, rule, subject, severity, direction, message, recommendation,
                                 numbers, first_evaluated_day, last_evaluated_day, status, resolved_on)
SELECT insight_id, user_id, rule, subject, severity, direction, message, recommendation, numbers,
       first_evaluated_day, last_evaluated_day,
       CASE WHEN resolved_on IS NULL THEN 'active' ELSE 'resolved' END, resolved_on
FROM insight_episodes
ON CONFLICT (user_id, insight_id) DO UPDATE SET
    severity = excluded.severity,
    direction = excluded.direction,
    message = excluded.message,
    recommendation = excluded.recommendation,
    numbers = excluded.numbers,
    last_evaluated_day = excluded.last_evaluated_day,
    status = excluded.status,
    resolved_on = excluded.resolved_on,
    updated_at = now()
WHERE (i.severity, i.direction, i.message, i.recommendation, i.numbers, i.last_evaluated_day, i.status,
       i.resolved_on)
      IS DISTINCT FROM
      (excluded.severity, excluded.direction, excluded.message, excluded.recommendation, excluded.numbers,
       excluded.last_evaluated_day, excluded.status, excluded.resolved_on)
