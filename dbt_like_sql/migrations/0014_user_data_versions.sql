-- Each user's data version: a counter advanced by every write that can change what the read API answers for that
-- user (the pipeline's partition writes, the marts, insights and scores, acknowledgements, shares). The read API
-- derives ETags from it and keys its response cache by it, so a write invalidates every cached answer of its users
-- without the API knowing which answers they were.

CREATE TABLE app.user_data_versions (
    user_id     text PRIMARY KEY,
    version     bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    changed_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE app.user_data_versions IS
    'per user, a counter advanced by every write that changes what the read API answers (ETag and cache key)';
