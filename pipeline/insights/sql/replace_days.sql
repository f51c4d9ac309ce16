-- The findings of the evaluated days replace those days' findings of the users in scope.
DELETE FROM marts.insight_days d
USING insight_users u
WHERE d.user_id = u.user_id AND d.local_date BETWEEN /* first day */ AND /* last day */
