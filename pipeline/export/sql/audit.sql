-- Who read the user's data (app.audit_log), one JSON object per line, oldest first: the trail `GET /v1/me/audit`
-- pages through.
SELECT json_build_object(
    'id', audit_id, 'at', at, 'channel', channel, 'keyId', key_id, 'shareId', share_id, 'route', route,
    'method', method, 'status', status, 'records', records
)::text
FROM app.audit_log
WHERE user_id = {user}
ORDER BY audit_id
