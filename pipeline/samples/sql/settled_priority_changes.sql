-- Source priority changes after the sensor's cursor that are old enough to be taken, in order: a change's id was
-- drawn when it was inserted, and a transaction that drew a lower id may still be committing.
SELECT change_id, user_id FROM app.source_priority_changes
WHERE change_id > %(after)s AND changed_at < clock_timestamp() - %(settle)s
ORDER BY change_id
