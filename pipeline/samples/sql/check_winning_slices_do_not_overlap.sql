-- winning_slices_do_not_overlap: winning slices that start before the previous winning slice of the same user and
-- metric ends (in-bed intervals are their own layer; empty slices cannot overlap).
SELECT count(*) FROM (
    SELECT s.slice_start_utc < lag(s.slice_end_utc) OVER (
               PARTITION BY s.user_id, s.metric, (s.stage = /* in bed stage */)
               ORDER BY s.slice_start_utc, s.slice_end_utc
           ) AS overlapping
    FROM core.slices s /* run window of s */
    WHERE s.won AND s.slice_end_utc > s.slice_start_utc
) o WHERE overlapping
