-- What the user sent that could not land, with the reason, one JSON object per line.
SELECT json_build_object('reason', reason, 'payload', payload, 'quarantinedAt', quarantined_at)::text
FROM raw.quarantine
WHERE user_id = {user}
ORDER BY quarantine_id
