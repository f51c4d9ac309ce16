-- The user-days of each range run, for the dbt models of the analyst marts (dbt_like_sql/models): the Dagster step
-- writes its run's (user_id, local_date) pairs under the run's id, runs `dbt build --vars '{run_id: ...}'`, whose
-- incremental models recompute only the user-weeks, user-months and days these pairs touch, then deletes its rows.
-- Rows of a run that died before deleting them are removed by a later run (created_at older than a day).
CREATE TABLE app.run_user_days (
    run_id      text NOT NULL,
    user_id     text NOT NULL,
    local_date  date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, user_id, local_date)
);
COMMENT ON TABLE app.run_user_days IS
    'the user-days a running range run computes, keyed by its Dagster run id: what its dbt build recomputes';

-- marts.cohort_daily recomputes the days a run touches over every user's daily rows of those days: found by day,
-- not by scanning marts.daily (its primary key starts with the user).
CREATE INDEX daily_by_day ON marts.daily (local_date, metric);
