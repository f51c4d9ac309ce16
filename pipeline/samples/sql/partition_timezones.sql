-- The zone history of the users of the staged user-days (run_partitions): from which instant each zone held.
SELECT user_id, valid_from, timezone FROM app.user_timezones
WHERE user_id IN (SELECT user_id FROM run_partitions)
