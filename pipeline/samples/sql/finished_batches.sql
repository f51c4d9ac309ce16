-- Ingest batches that finished (done or failed) after the batch sensor's cursor, up to the last one it takes, in
-- order: one observation of raw_samples each. Counts and kinds only: no user, file name or device id.
SELECT batch_id, source, status, read_count, landed_count, rejected_count, duplicate_count, skipped_count, finished_at
FROM app.ingest_batches
WHERE batch_id > %(after)s AND batch_id <= %(upto)s AND status <> 'running'
ORDER BY batch_id
