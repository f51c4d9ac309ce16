-- The user's share links, one JSON object per line; never their codes (only a hash of each is kept).
SELECT json_build_object(
    'id', share_id, 'recipient', recipient, 'types', metrics, 'start', start_date, 'end', end_date,
    'createdAt', created_at, 'expiresAt', expires_at, 'revokedAt', revoked_at
)::text
FROM app.shares
WHERE user_id = {user}
ORDER BY created_at, share_id
