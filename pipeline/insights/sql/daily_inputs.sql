-- The daily marts the rules read, for the users in scope and the loaded days.
SELECT d.user_id, d.local_date, d.metric, d.value, d.min, d.flagged_count
FROM marts.daily d
JOIN insight_users u USING (user_id)
WHERE d.local_date BETWEEN /* first day */ AND /* last day */
  AND d.metric IN (/* daily metrics */)
