-- Placeholder for version 18, which belongs to per-user encryption (issue 15) on another branch: migration versions
-- run 1..N without gaps, and 0020_erasures needs 18 and 19 to exist. Replaced by the real 0018 when the branches merge.
SELECT 1;
