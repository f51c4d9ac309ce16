-- Insights (docs/insights.md): rules evaluated over the daily marts, as of a local day, for every user at once.
--
-- marts.insight_days: what each rule found on each evaluated day (only the days a condition held), replaced per
-- evaluated (user, day); marts.insight_evaluations: the days evaluated for every user. An insight (marts.insights)
-- is an episode: a run of consecutive evaluated days on which one rule held for one user (and subject: the device
-- class of a data gap). Its id is derived from (user, rule, subject, first day), so a recompute updates the same row;
-- acknowledged_at belongs to the user and no recompute writes it.

-- A user's own daily step goal; NULL: the catalogue's (pipeline/catalog.py, STEPS).
ALTER TABLE app.users ADD COLUMN step_goal integer CHECK (step_goal > 0);

CREATE TABLE marts.insight_evaluations (
    local_date          date PRIMARY KEY,
    first_evaluated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE marts.insight_days (
    user_id         text NOT NULL,
    rule            text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    local_date      date NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    direction       text CHECK (direction IN ('increasing', 'decreasing')),
    message         text NOT NULL,
    recommendation  text NOT NULL,
    numbers         jsonb NOT NULL,
    PRIMARY KEY (user_id, rule, subject, local_date)
);
CREATE INDEX insight_days_by_day ON marts.insight_days (local_date);

CREATE TABLE marts.insights (
    insight_id           uuid PRIMARY KEY,
    user_id              text NOT NULL,
    rule                 text NOT NULL,
    subject              text NOT NULL DEFAULT '',
    severity             text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    direction            text CHECK (direction IN ('increasing', 'decreasing')),
    message              text NOT NULL,
    recommendation       text NOT NULL,
    numbers              jsonb NOT NULL,
    first_evaluated_day  date NOT NULL,
    last_evaluated_day   date NOT NULL,
    status               text NOT NULL CHECK (status IN ('active', 'resolved')),
    resolved_on          date,
    acknowledged_at      timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'resolved') = (resolved_on IS NOT NULL)),
    UNIQUE (user_id, rule, subject, first_evaluated_day)
);
CREATE INDEX insights_by_user ON marts.insights (user_id, status, last_evaluated_day);

COMMENT ON COLUMN marts.insights.insight_id IS
    'md5 of user, rule, subject and first day as a uuid: the same episode always gets the same id';
COMMENT ON COLUMN marts.insights.acknowledged_at IS 'set by the user (or an app); recomputes never change it';
