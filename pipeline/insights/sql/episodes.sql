-- The episodes the evaluated days can have changed: the runs of consecutive days on which a rule held for a user
-- (and subject) that touch the evaluated days or the day on either side (which they can extend, split, merge or
-- resolve). Each run is read whole, back to its first day. Its fields are those of its last day.
CREATE TEMPORARY TABLE insight_episodes ON COMMIT DROP AS
WITH touched AS (
    SELECT DISTINCT d.user_id, d.rule, d.subject
    FROM marts.insight_days d JOIN insight_users u USING (user_id)
    WHERE d.local_date BETWEEN /* first day */ - 1 AND /* last day */ + 1
    UNION
    SELECT i.user_id, i.rule, i.subject
    FROM marts.insights i JOIN insight_users u USING (user_id)
    WHERE i.last_evaluated_day >= /* first day */ - 1 AND i.first_evaluated_day <= /* last day */ + 1
), runs AS (
    SELECT d.*, d.local_date - (row_number() OVER w)::int AS run
    FROM marts.insight_days d JOIN touched USING (user_id, rule, subject)
    WINDOW w AS (PARTITION BY d.user_id, d.rule, d.subject ORDER BY d.local_date)
), spans AS (
    SELECT user_id, rule, subject, min(local_date) AS first_day, max(local_date) AS last_day
    FROM runs
    GROUP BY user_id, rule, subject, run
    HAVING max(local_date) >= /* first day */ - 1 AND min(local_date) <= /* last day */ + 1
)
SELECT md5(s.user_id || chr(31) || s.rule || chr(31) || s.subject || chr(31) || s.first_day::text)::uuid AS insight_id,
       s.user_id, s.rule, s.subject, d.severity, d.direction, d.message, d.recommendation, d.numbers,
       s.first_day AS first_evaluated_day, s.last_day AS last_evaluated_day,
       e.local_date AS resolved_on
FROM spans s
JOIN marts.insight_days d
  ON d.user_id = s.user_id AND d.rule = s.rule AND d.subject = s.subject AND d.local_date = s.last_day
LEFT JOIN marts.insight_evaluations e ON e.local_date = s.last_day + 1
