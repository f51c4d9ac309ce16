-- Share links (docs/api.md, "Sharing"): a user lets someone without a key read the daily aggregates of some metric
-- types over a range of local dates, until the link expires or is revoked. The code in the link is never stored:
-- only its SHA-256 (codes carry 192 random bits, so a fast hash is enough), looked up by equality.

CREATE TABLE app.shares (
    share_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     text NOT NULL REFERENCES app.users ON DELETE CASCADE,
    recipient   text NOT NULL CHECK (length(recipient) BETWEEN 1 AND 200),
    metrics     text[] NOT NULL CHECK (cardinality(metrics) > 0),
    start_date  date NOT NULL,
    end_date    date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    code_hash   bytea NOT NULL UNIQUE CHECK (octet_length(code_hash) = 32),
    CHECK (end_date >= start_date)
);
CREATE INDEX shares_by_user ON app.shares (user_id, created_at);

COMMENT ON TABLE app.shares IS 'share links: what a link shows (metrics, dates) and until when; never the code itself';
COMMENT ON COLUMN app.shares.recipient IS 'who the owner meant the link for, as the owner wrote it; never shown by the link';
COMMENT ON COLUMN app.shares.metrics IS 'catalogue metric names the link shows (validated by the API)';
COMMENT ON COLUMN app.shares.code_hash IS 'sha256 of the code in the link; the code is shown once, at creation';
