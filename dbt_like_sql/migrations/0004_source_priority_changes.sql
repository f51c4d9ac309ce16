-- Each change of a user's source priority (issue 4), so that the sensor source_priority_changes recomputes that
-- user's days: the result depends on the order, and days computed before the change used the old one.
CREATE TABLE app.source_priority_changes (
    change_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     text NOT NULL REFERENCES app.users ON DELETE CASCADE,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
