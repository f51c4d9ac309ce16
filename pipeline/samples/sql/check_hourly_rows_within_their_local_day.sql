-- hourly_rows_within_their_local_day: marts.hourly rows whose local hour is not on their partition's day.
SELECT count(*) FROM marts.hourly t /* run partitions of t */ WHERE t.local_hour::date <> t.local_date
