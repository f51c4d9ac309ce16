-- The key store: one wrapped data key per subject (a user id, or ':unattributed' for quarantined rows that name no
-- user). It lives in its own database, outside the warehouse's dumps and backups (docs/privacy.md), and keeps no
-- history: a destroyed key's row is deleted and the table vacuumed at once.
CREATE TABLE IF NOT EXISTS data_keys (
    subject     text PRIMARY KEY,
    master_id   bytea NOT NULL,   -- id of the master key that wrapped it (pipeline/privacy/master.py)
    wrapped     bytea NOT NULL,   -- nonce || AES-256-GCM(master key, data key), bound to the subject
    created_at  timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON data_keys FROM PUBLIC;
