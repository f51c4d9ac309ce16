-- Placeholder for version 19, which belongs to the audit log (issue 15, app.audit_log) on another branch: migration
-- versions run 1..N without gaps, and 0020_erasures needs 18 and 19 to exist. Replaced by the real 0019 when the
-- branches merge.
SELECT 1;
