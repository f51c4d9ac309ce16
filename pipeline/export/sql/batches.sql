-- The user's imports and device syncs (app.ingest_batches), one JSON object per line: what came in, when, and what
-- became of it.
SELECT json_build_object(
    'batchId', batch_id, 'source', source, 'sourceRef', source_ref, 'status', status, 'read', read_count,
    'landed', landed_count, 'duplicates', duplicate_count, 'rejected', rejected_count, 'skipped', skipped_count,
    'skippedTypes', skipped_types, 'startedAt', started_at, 'finishedAt', finished_at
)::text
FROM app.ingest_batches
WHERE user_id = {user}
ORDER BY batch_id
