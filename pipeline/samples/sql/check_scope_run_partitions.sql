-- The run's user-days, joined to a per-partition table aliased t: what the checks' placeholder "run partitions of
-- t" becomes when a check runs in a partitioned run (outside one, nothing: the whole table).
JOIN run_partitions p ON p.user_id = t.user_id AND p.local_date = t.local_date
