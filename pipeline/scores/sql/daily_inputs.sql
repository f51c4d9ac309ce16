-- The score's daily inputs of the days scored, every user: a day's value of a metric with flagged samples is left
-- out (missing, never zero), except SpO2, whose only flag is the very low reading the score should see.
SELECT d.user_id, d.local_date, m.input, d.value
FROM marts.daily d
JOIN (VALUES /* metric inputs */) AS m (metric, input) USING (metric)
WHERE d.local_date BETWEEN /* first day */ AND /* last day */
  AND (d.flagged_count = 0 OR d.metric IN (/* flagged days count */))
