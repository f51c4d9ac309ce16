-- The day summary of one user (GET /v1/me/summary): every part in one statement, one scalar subquery each, so an
-- uncached summary costs one round trip. Parameters: %(user)s, %(day)s (a local date), %(sleep)s (the sleep metric).
SELECT
    -- the day's marts.daily row of each metric, by name
    (SELECT coalesce(json_agg(json_build_object(
                'metric', d.metric, 'value', d.value, 'count', d.count, 'min', d.min, 'max', d.max,
                'flagged_count', d.flagged_count) ORDER BY d.metric), '[]')
     FROM marts.daily d WHERE d.user_id = %(user)s AND d.local_date = %(day)s) AS metrics,
    -- the user's own step goal; NULL: the catalogue's
    (SELECT u.step_goal FROM app.users u WHERE u.user_id = %(user)s) AS step_goal,
    -- minutes per stage of the nights that end on the day (the wake-up day, as marts.daily counts sleep): the
    -- deduplicated sleep slices (those whose source won) inside each night's session. A night can start the day
    -- before, so slices of both days are read (the partition index finds them).
    (SELECT coalesce(json_agg(json_build_object('stage', st.stage, 'minutes', st.minutes) ORDER BY st.stage), '[]')
     FROM (SELECT s.stage, sum(s.value ORDER BY s.slice_start_utc) AS minutes
           FROM core.sleep_sessions n
           JOIN core.slices s ON s.user_id = n.user_id AND s.local_date BETWEEN n.local_date - 1 AND n.local_date
            AND s.metric = %(sleep)s AND s.won
            AND s.slice_start_utc >= n.session_start_utc AND s.slice_end_utc <= n.session_end_utc
           WHERE n.user_id = %(user)s AND n.local_date = %(day)s AND s.stage IS NOT NULL
           GROUP BY s.stage) st) AS stages,
    -- the day's health score with its components
    (SELECT json_build_object(
                'local_date', h.local_date, 'score', h.score, 'activity', h.activity, 'sleep', h.sleep,
                'vitals', h.vitals, 'completeness', h.completeness, 'cohort_users', h.cohort_users,
                'computed_at', h.computed_at)
     FROM marts.health_scores h WHERE h.user_id = %(user)s AND h.local_date = %(day)s) AS health_score,
    (SELECT count(*) FROM marts.insights i WHERE i.user_id = %(user)s AND i.status = 'active') AS active_insights,
    -- when the user's samples last landed: the latest finished batch that landed any of theirs, their own imports
    -- and syncs or a batch of several users holding some. The two kinds are looked up apart, each newest first on
    -- the partial index ingest_batches_landed_by_user (one OR of both made PostgreSQL read every batch since the
    -- user's last one).
    (SELECT latest.finished_at FROM (
         (SELECT b.batch_id, b.finished_at FROM app.ingest_batches b
          WHERE b.user_id = %(user)s AND b.finished_at IS NOT NULL AND b.landed_count > 0
          ORDER BY b.batch_id DESC LIMIT 1)
         UNION ALL
         (SELECT b.batch_id, b.finished_at FROM app.ingest_batches b
          WHERE b.user_id IS NULL AND b.finished_at IS NOT NULL AND b.landed_count > 0
            AND EXISTS (SELECT 1 FROM raw.samples s WHERE s.batch_id = b.batch_id AND s.user_id = %(user)s)
          ORDER BY b.batch_id DESC LIMIT 1)) AS latest
     ORDER BY latest.batch_id DESC LIMIT 1) AS last_landed_at,
    -- when the user's days were last computed
    (SELECT max(p.computed_at) FROM core.partition_stats p WHERE p.user_id = %(user)s) AS last_computed_at,
    -- the user's latest local day up to their today with a daily value (what a dashboard opens on while today has
    -- none): the last entry of marts.daily's key (user, day, ...) at or before today, one backward index step (a
    -- max() over a join with app.users read every day of the user's)
    (SELECT d.local_date FROM marts.daily d
     WHERE d.user_id = %(user)s
       AND d.local_date <= (SELECT (now() AT TIME ZONE u.home_timezone)::date FROM app.users u
                            WHERE u.user_id = %(user)s)
     ORDER BY d.local_date DESC LIMIT 1) AS last_data_date
