-- Raw samples that can touch the requested user-days: per user, a UTC window from two days before its first
-- requested day to two days after its last (covers every zone offset, samples up to 24 h long, and nights that
-- began the evening before). Parameters: user ids, first days, last days (parallel arrays).
COPY (
    SELECT s.identity, s.user_id, s.metric, s.value, s.unit, s.stage,
           (extract(epoch FROM s.start_utc) * 1000000)::bigint AS start_us,
           (extract(epoch FROM s.end_utc) * 1000000)::bigint AS end_us, s.timezone,
           s.source_name, s.device_class
    FROM unnest(%(users)s::text[], %(first_days)s::date[], %(last_days)s::date[]) AS w(user_id, first_day, last_day)
    JOIN raw.samples s
      ON s.user_id = w.user_id
     AND s.start_utc >= (w.first_day - 2)::timestamp AT TIME ZONE 'UTC'
     AND s.start_utc < (w.last_day + 3)::timestamp AT TIME ZONE 'UTC'
    ORDER BY s.user_id, s.start_utc, s.identity  -- the primary key's order: a deterministic input, hence sums
) TO STDOUT WITH (FORMAT csv, HEADER)
