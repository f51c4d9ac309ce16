-- A file import whose process died (killed, out of memory, its machine lost) left its batch 'running' for ever,
-- and the batch sensor holds back every batch after a running one. A file import now holds a session advisory lock
-- on its batch while it runs (`pipeline.ingest.store.create_held_batch`): the server frees it when the importing
-- session ends, however it ends. A running import whose lock is free has nothing behind it and is marked
-- 'abandoned' (at the start of every import and on every tick of the batch sensor); the rows it landed stay, and
-- are counted. Device syncs and synthetic loads (one transaction each) hold no lock and are never swept.
ALTER TABLE app.ingest_batches DROP CONSTRAINT ingest_batches_status_check;
ALTER TABLE app.ingest_batches ADD CONSTRAINT ingest_batches_status_check
    CHECK (status IN ('running', 'done', 'failed', 'abandoned'));
