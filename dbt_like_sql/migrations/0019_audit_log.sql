-- The audit trail (docs/privacy.md, "Audit trail"): one row per read of a user's data (an API read route, a share
-- link's use, an export, an admin read) and per erasure. It says who read (an API key's id, a share's id, or the
-- command line), whose data, through which route (its template, never the raw path), with what outcome and how
-- many records; never the data itself, nor a key or a share code. Written in batches with COPY by the API
-- (api/audit.py) and row by row by the commands (pipeline/audit/entries.py).
--
-- No foreign keys: an audit row outlives the key, the share and the user it names (an erasure removes the user's
-- rows, then records one with no personal data), and a key checked on every insert would cost every batch.

CREATE TABLE app.audit_log (
    audit_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL,
    channel   text NOT NULL CHECK (channel IN ('api', 'share', 'cli', 'pipeline')),
    key_id    bigint,       -- app.api_keys.key_id of the key that read (channel api)
    share_id  uuid,         -- app.shares.share_id of the link that was used (channel share); never its code
    user_id   text,         -- whose data; NULL for a read of no single user's data (admin stats) or an erasure
    route     text NOT NULL CHECK (char_length(route) BETWEEN 1 AND 200),
    method    text NOT NULL CHECK (char_length(method) BETWEEN 1 AND 10),
    status    smallint NOT NULL,
    records   integer CHECK (records >= 0),
    CHECK (channel <> 'api' OR key_id IS NOT NULL),
    CHECK (channel <> 'share' OR share_id IS NOT NULL)
);
-- a user's entries, newest first (GET /v1/me/audit, `healthpipe audit USER`)
CREATE INDEX audit_log_by_user ON app.audit_log (user_id, audit_id);

COMMENT ON TABLE app.audit_log IS 'who read whose data, when, through which route, how many records; never the data';
COMMENT ON COLUMN app.audit_log.at IS 'when the request was answered (the command ran)';
COMMENT ON COLUMN app.audit_log.channel IS 'api (an API key), share (a share link), cli (a command), pipeline';
COMMENT ON COLUMN app.audit_log.key_id IS 'the API key that read (app.api_keys.key_id); the key itself is never kept';
COMMENT ON COLUMN app.audit_log.share_id IS 'the share link that was used (app.shares.share_id); never its code';
COMMENT ON COLUMN app.audit_log.user_id IS 'whose data was read; NULL: no single user''s (admin figures, erasure)';
COMMENT ON COLUMN app.audit_log.route IS 'the route template (/v1/users/{user_id}/summary) or the command';
COMMENT ON COLUMN app.audit_log.status IS 'HTTP status of the answer (304: revalidated, nothing sent); 0 for a command';
COMMENT ON COLUMN app.audit_log.records IS 'how many records the answer held; NULL where it is not counted';
