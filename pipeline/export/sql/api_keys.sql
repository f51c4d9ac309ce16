-- The user's API keys as listed (prefix and label), one JSON object per line; the keys themselves are not kept.
SELECT json_build_object(
    'keyId', key_id, 'prefix', prefix, 'label', label, 'createdAt', created_at, 'revokedAt', revoked_at,
    'lastUsedAt', last_used_at
)::text
FROM app.api_keys
WHERE user_id = {user}
ORDER BY key_id
