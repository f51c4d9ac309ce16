-- When rows last landed as of the batch sensor's cursor: the finish time of the latest finished batch up to it that
-- landed any row.
SELECT finished_at FROM app.ingest_batches
WHERE batch_id <= %(after)s AND landed_count > 0 AND status <> 'running'
ORDER BY batch_id DESC LIMIT 1
