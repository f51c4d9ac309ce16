-- The users of the staged user-days (run_partitions): their home zone and their own source priority (NULL: the
-- default order).
SELECT user_id, home_timezone, source_priority FROM app.users
WHERE user_id IN (SELECT user_id FROM run_partitions)
