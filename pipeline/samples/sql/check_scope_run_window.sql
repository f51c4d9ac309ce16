-- The run's user-days widened by a day either side, per user, joined to core.slices aliased s: what the overlap
-- check's placeholder "run window of s" becomes in a partitioned run (a run's slices are compared with each other
-- and with those of the days either side; outside a run, nothing: all slices).
JOIN (SELECT user_id, min(local_date) - 1 AS first_day, max(local_date) + 1 AS last_day
      FROM run_partitions GROUP BY user_id) w
  ON w.user_id = s.user_id AND s.local_date BETWEEN w.first_day AND w.last_day
