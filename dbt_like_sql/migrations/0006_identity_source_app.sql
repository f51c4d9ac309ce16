-- raw.samples.identity covers the source app (issue 9): two apps writing the same reading under one source name are
-- two raw rows, and the pipeline's discrete matching records which one it kept. A row without an app keeps its
-- identity; a row with one gets md5(hex digits of its old identity || '|' || source_app), exactly what the landing
-- now computes (pipeline/ingest/store.py IDENTITY_SQL), so re-importing a file lands nothing. The old identity is
-- unique and the new one is a hash of it: no row is lost or duplicated.
--
-- Core rows refer to raw identities (core.slices, core.readings identity and matched_identity, core.rejections):
-- they are given the same new identities here, so they stay consistent without a recompute. (A recompute is still
-- what applies the new rule to days where two apps wrote under one source name: until then those readings keep the
-- outcome computed before, where the two apps' readings were one source.)
CREATE TEMP TABLE identity_changes ON COMMIT DROP AS
SELECT identity AS old_identity, md5(replace(identity::text, '-', '') || '|' || source_app)::uuid AS new_identity
FROM raw.samples
WHERE source_app <> '';
ANALYZE identity_changes;

UPDATE core.slices c SET identity = m.new_identity FROM identity_changes m WHERE c.identity = m.old_identity;
UPDATE core.readings c SET identity = m.new_identity FROM identity_changes m WHERE c.identity = m.old_identity;
UPDATE core.readings c SET matched_identity = m.new_identity
FROM identity_changes m WHERE c.matched_identity = m.old_identity;
UPDATE core.rejections c SET identity = m.new_identity FROM identity_changes m WHERE c.identity = m.old_identity;
UPDATE raw.samples SET identity = md5(replace(identity::text, '-', '') || '|' || source_app)::uuid
WHERE source_app <> '';

COMMENT ON COLUMN raw.samples.identity IS
    'md5 of user|metric|source_name|device|start us|end us|value text|unit|stage|external_id; where source_app is '
    'set, md5 of that hex || ''|'' || source_app. Same identity = same sample: a repeat lands nothing';
