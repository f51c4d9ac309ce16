-- Raw landing (issue 3): users, devices, ingest batches, API keys, sync idempotency, samples, quarantine.

CREATE TABLE app.users (
    user_id          text PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    display_name     text,
    home_timezone    text NOT NULL DEFAULT 'UTC',
    -- ordered device classes, highest priority first; NULL = the default (watch > phone > tablet > wearable >
    -- scale_or_app > manual)
    source_priority  text[],
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Time zone history (travel): from valid_from on, the user's local days are in this zone.
CREATE TABLE app.user_timezones (
    user_id     text NOT NULL REFERENCES app.users ON DELETE CASCADE,
    valid_from  timestamptz NOT NULL,
    timezone    text NOT NULL,
    PRIMARY KEY (user_id, valid_from)
);

CREATE TABLE app.devices (
    user_id       text NOT NULL REFERENCES app.users ON DELETE CASCADE,
    device_id     text NOT NULL CHECK (device_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    device_class  text NOT NULL CHECK (device_class IN ('watch', 'phone', 'tablet', 'wearable', 'scale_or_app', 'manual')),
    name          text NOT NULL,
    last_sync_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE app.ingest_batches (
    batch_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          text REFERENCES app.users ON DELETE CASCADE,
    source           text NOT NULL,        -- apple_health, ndjson, csv, device_sync, synthetic
    source_ref       text,                 -- file name or device id
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    read_count       bigint NOT NULL DEFAULT 0,
    landed_count     bigint NOT NULL DEFAULT 0,
    duplicate_count  bigint NOT NULL DEFAULT 0,
    rejected_count   bigint NOT NULL DEFAULT 0,
    skipped_count    bigint NOT NULL DEFAULT 0,
    skipped_types    jsonb NOT NULL DEFAULT '{}'::jsonb,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

-- Samples as received. Append-only. identity is a hash of what makes a sample the same sample, so a retried
-- upload or a re-imported export never lands twice (ON CONFLICT DO NOTHING). The key leads with (user_id,
-- start_utc): the identity hash covers both, so uniqueness is the same as on identity alone, while one index serves
-- deduplication and the pipeline's per-user time-window loads, and time-ordered imports insert almost in order.
-- No foreign keys here: a per-row trigger would cost more than the rest of the insert; the landing checks users
-- before it writes, and deleting a user deletes their raw rows explicitly.
CREATE TABLE raw.samples (
    identity      uuid NOT NULL,
    user_id       text NOT NULL,
    metric        text NOT NULL,
    value         double precision NOT NULL,   -- as received, in `unit`
    unit          text NOT NULL,               -- as received
    stage         text,                        -- sleep stage for SLEEP_ANALYSIS
    start_utc     timestamptz NOT NULL,
    end_utc       timestamptz NOT NULL,
    timezone      text,                        -- the zone it was taken in, when known (IANA name or +HH:MM)
    source_name   text NOT NULL,
    device_class  text NOT NULL,
    source_app    text,
    device        text,
    external_id   text,                        -- the source's own id or creation time, part of the identity
    metadata      jsonb,
    batch_id      bigint NOT NULL,             -- app.ingest_batches
    landed_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (end_utc >= start_utc),
    PRIMARY KEY (user_id, start_utc, identity)
);
-- batch ids only grow, so a BRIN index finds a batch's rows at a fraction of a btree's upkeep
CREATE INDEX samples_batch ON raw.samples USING brin (batch_id);

-- What could not land, with the original payload and why. Nothing a user sent is silently lost.
CREATE TABLE raw.quarantine (
    quarantine_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id        bigint NOT NULL,           -- app.ingest_batches
    user_id         text,
    reason          text NOT NULL,
    payload         jsonb NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_batch ON raw.quarantine (batch_id);

CREATE TABLE app.api_keys (
    key_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix        text NOT NULL UNIQUE,        -- shown in listings; the key itself is never stored
    key_hash      bytea NOT NULL UNIQUE,       -- sha256 of the whole key (keys carry 256 random bits)
    user_id       text REFERENCES app.users ON DELETE CASCADE,
    is_admin      boolean NOT NULL DEFAULT false,
    label         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK (user_id IS NOT NULL OR is_admin)
);

-- Device sync idempotency: the first response to (user, key) is stored and replayed for every retry.
CREATE TABLE app.sync_requests (
    user_id          text NOT NULL REFERENCES app.users ON DELETE CASCADE,
    idempotency_key  text NOT NULL,
    device_id        text NOT NULL,
    request_hash     text NOT NULL,
    batch_id         bigint REFERENCES app.ingest_batches,
    response         jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);
