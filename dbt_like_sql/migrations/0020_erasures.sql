-- Erasures (issue 15, docs/privacy.md "Erasure"): one row per user erased with `healthpipe users delete` or
-- DELETE /v1/me, kept after every row of the user is gone. It holds nothing of the person: no user id (not even a
-- hash: user ids are few and guessable, so a hash of one is as good as the id), only when, through what, and how
-- many rows left each table. The audit log (app.audit_log), where present, may take these rows over.

CREATE TABLE app.erasures (
    erasure_id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at             timestamptz NOT NULL DEFAULT now(),
    requested_by          text NOT NULL CHECK (requested_by ~ '^(cli|api-key:hp_[A-Za-z0-9_-]{1,16})$'),
    rows_removed          jsonb NOT NULL,
    data_key_destroyed    boolean NOT NULL,
    dagster_partitions    integer NOT NULL DEFAULT 0 CHECK (dagster_partitions >= 0),
    days_recomputed       integer CHECK (days_recomputed >= 0),
    recomputed_at         timestamptz
);

COMMENT ON TABLE app.erasures IS 'users erased: when, through what, rows removed per table; nothing of the person';
COMMENT ON COLUMN app.erasures.requested_by IS
    'cli (healthpipe users delete) or api-key:<prefix> (DELETE /v1/me with the erased user''s own key, now deleted)';
COMMENT ON COLUMN app.erasures.rows_removed IS 'schema.table -> rows of the user deleted from it';
COMMENT ON COLUMN app.erasures.data_key_destroyed IS 'whether a data key of the user was destroyed (crypto-shredding)';
COMMENT ON COLUMN app.erasures.dagster_partitions IS 'user partitions removed from the Dagster instance';
COMMENT ON COLUMN app.erasures.days_recomputed IS
    'days whose cohort statistics and health scores were recomputed without the user; NULL until done';
COMMENT ON COLUMN app.erasures.recomputed_at IS 'when that recompute finished; NULL: not (yet) done';
