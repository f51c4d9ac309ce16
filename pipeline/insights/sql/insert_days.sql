INSERT INTO marts.insight_days (user_id, rule, subject, local_date, severity, direction, message, recommendation, numbers)
SELECT user_id, rule, subject, local_date, severity, direction, message, recommendation, numbers::jsonb
FROM insight_findings
