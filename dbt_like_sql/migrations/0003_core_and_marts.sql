-- Pipeline outputs (issue 4). Every table is keyed by the partition (user_id, local_date): an asset replaces a set
-- of partitions in one transaction (delete their rows, then COPY), so reruns are idempotent and a crash leaves the
-- previous rows intact.

-- Samples the validate step rejected (hard plausibility limits), with the reason; the raw row stays in raw.samples.
CREATE TABLE core.rejections (
    user_id     text NOT NULL,
    local_date  date NOT NULL,
    identity    uuid NOT NULL,
    metric      text NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX rejections_partition ON core.rejections (user_id, local_date);

-- Cumulative and sleep samples cut into slices; `won` marks the source that counts for the slice (DESIGN §5.3).
CREATE TABLE core.slices (
    user_id          text NOT NULL,
    local_date       date NOT NULL,
    metric           text NOT NULL,
    stage            text,
    slice_start_utc  timestamptz NOT NULL,
    slice_end_utc    timestamptz NOT NULL,
    local_hour       timestamp NOT NULL,
    hour_start_utc   timestamptz NOT NULL,
    value            double precision NOT NULL,
    source_name      text NOT NULL,
    device_class     text NOT NULL,
    identity         uuid NOT NULL,
    won              boolean NOT NULL
);
CREATE INDEX slices_partition ON core.slices (user_id, local_date);

-- Discrete readings; `kept` false when a better-ranked source measured the same thing (matched_identity).
CREATE TABLE core.readings (
    user_id           text NOT NULL,
    local_date        date NOT NULL,
    metric            text NOT NULL,
    start_utc         timestamptz NOT NULL,
    local_hour        timestamp NOT NULL,
    hour_start_utc    timestamptz NOT NULL,
    value             double precision NOT NULL,
    source_name       text NOT NULL,
    device_class      text NOT NULL,
    identity          uuid NOT NULL,
    kept              boolean NOT NULL,
    matched_identity  uuid,
    flags             text
);
CREATE INDEX readings_partition ON core.readings (user_id, local_date);

CREATE TABLE core.sleep_sessions (
    user_id            text NOT NULL,
    local_date         date NOT NULL,          -- the wake-up day
    session_start_utc  timestamptz NOT NULL,
    session_end_utc    timestamptz NOT NULL,
    asleep_minutes     double precision NOT NULL
);
CREATE INDEX sleep_sessions_partition ON core.sleep_sessions (user_id, local_date);

-- Per source: what it reported and what was kept after the rules (sums; counts of readings for discrete metrics).
CREATE TABLE core.source_totals (
    user_id       text NOT NULL,
    local_date    date NOT NULL,
    metric        text NOT NULL,
    source_name   text NOT NULL,
    device_class  text NOT NULL,
    raw           double precision NOT NULL,
    kept          double precision NOT NULL
);
CREATE INDEX source_totals_partition ON core.source_totals (user_id, local_date);

-- Row accounting per partition, for the conservation check: raw = accepted + rejected, accepted = unique + exact.
CREATE TABLE core.partition_stats (
    user_id           text NOT NULL,
    local_date        date NOT NULL,
    raw_rows          bigint NOT NULL,
    rejected          bigint NOT NULL,
    accepted          bigint NOT NULL,
    exact_duplicates  bigint NOT NULL,
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, local_date)
);

CREATE TABLE marts.hourly (
    user_id         text NOT NULL,
    local_date      date NOT NULL,
    metric          text NOT NULL,
    local_hour      timestamp NOT NULL,
    hour_start_utc  timestamptz NOT NULL,       -- tells apart the two 01:00 hours of a fall-back night
    value           double precision NOT NULL,
    sum             double precision NOT NULL,
    count           bigint NOT NULL,
    min             double precision,
    max             double precision,
    latest_value    double precision,
    latest_at       timestamptz,
    PRIMARY KEY (user_id, metric, hour_start_utc, local_hour)
);
CREATE INDEX hourly_partition ON marts.hourly (user_id, local_date);

CREATE TABLE marts.daily (
    user_id       text NOT NULL,
    local_date    date NOT NULL,
    metric        text NOT NULL,
    value         double precision NOT NULL,
    sum           double precision NOT NULL,
    count         bigint NOT NULL,
    min           double precision,
    max           double precision,
    latest_value  double precision,
    latest_at     timestamptz,
    PRIMARY KEY (user_id, local_date, metric)
);
