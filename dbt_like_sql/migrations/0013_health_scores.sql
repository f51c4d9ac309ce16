-- The daily health score (docs/health-score.md): per user and local day, 0-100, from activity, sleep and vitals
-- components normalized across the day's cohort. Written per day for every user at once (delete, then insert, in
-- one transaction); a user-day without enough data has no row (score is never NULL).

CREATE TABLE marts.health_scores (
    user_id       text NOT NULL,
    local_date    date NOT NULL,
    score         double precision NOT NULL CHECK (score BETWEEN 0 AND 100),
    activity      double precision CHECK (activity BETWEEN 0 AND 100),
    sleep         double precision CHECK (sleep BETWEEN 0 AND 100),
    vitals        double precision CHECK (vitals BETWEEN 0 AND 100),
    completeness  double precision NOT NULL CHECK (completeness > 0 AND completeness <= 1),
    cohort_users  integer NOT NULL CHECK (cohort_users > 0),
    computed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, local_date)
);
CREATE INDEX health_scores_by_day ON marts.health_scores (local_date);

-- The days scored (with or without any score), so the catch-up sensor knows what is left and late data which
-- days to score again.
CREATE TABLE marts.health_score_days (
    local_date    date PRIMARY KEY,
    scored_users  integer NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON COLUMN marts.health_scores.score IS
    '0-100: the weighted mean of the present components (activity 0.4, sleep 0.3, vitals 0.3), re-weighted';
COMMENT ON COLUMN marts.health_scores.completeness IS
    'share of the full formula''s weight that had data (1: every input of every component)';
COMMENT ON COLUMN marts.health_scores.cohort_users IS 'users scored that day: the cohort the score is relative to';
COMMENT ON TABLE marts.health_scores IS
    'daily health score per user (docs/health-score.md): no row when the day has too little data for a score';
COMMENT ON COLUMN marts.health_scores.user_id IS 'the user (app.users)';
COMMENT ON COLUMN marts.health_scores.local_date IS 'the local day scored';
COMMENT ON COLUMN marts.health_scores.activity IS 'steps and active energy against the day''s cohort, 0-100; NULL: no data';
COMMENT ON COLUMN marts.health_scores.sleep IS
    'sleep duration against the 7-9 h band and regularity against the day''s cohort, 0-100; NULL: no data';
COMMENT ON COLUMN marts.health_scores.vitals IS
    'resting heart rate (lower is better) and SpO2 against the day''s cohort, 0-100; NULL: no data';
COMMENT ON COLUMN marts.health_scores.computed_at IS 'when the day was last scored';
COMMENT ON TABLE marts.health_score_days IS 'the days scored, for every user at once';
COMMENT ON COLUMN marts.health_score_days.local_date IS 'the local day scored';
COMMENT ON COLUMN marts.health_score_days.scored_users IS 'users with a score that day (0: nobody had enough data)';
COMMENT ON COLUMN marts.health_score_days.computed_at IS 'when the day was last scored';
