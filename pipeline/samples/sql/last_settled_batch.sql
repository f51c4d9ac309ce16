-- The last batch the batch sensor may take after its cursor: the highest finished batch with no batch still running
-- at or below it (a running batch holds back every batch after it), else the cursor itself.
SELECT coalesce(max(batch_id), %(after)s) FROM app.ingest_batches
WHERE status <> 'running' AND batch_id > %(after)s
  AND NOT EXISTS (
      SELECT 1 FROM app.ingest_batches r WHERE r.status = 'running' AND r.batch_id <= app.ingest_batches.batch_id
  )
