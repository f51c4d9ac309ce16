-- The erasure's audit row: nothing of the person, only what was removed.
INSERT INTO app.erasures (requested_by, rows_removed, data_key_destroyed)
VALUES (%(requested_by)s, %(rows_removed)s, %(data_key_destroyed)s)
RETURNING erasure_id
