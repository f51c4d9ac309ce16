-- The user's insights (marts.insights), one JSON object per line, oldest first.
SELECT json_build_object(
    'id', insight_id, 'rule', rule, 'subject', subject, 'severity', severity, 'direction', direction,
    'message', message, 'recommendation', recommendation, 'numbers', numbers,
    'firstDay', first_evaluated_day, 'lastDay', last_evaluated_day, 'status', status, 'resolvedOn', resolved_on,
    'acknowledgedAt', acknowledged_at, 'createdAt', created_at, 'updatedAt', updated_at
)::text
FROM marts.insights
WHERE user_id = {user}
ORDER BY first_evaluated_day, insight_id
