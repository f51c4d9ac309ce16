-- core.partition_stats.accepted no longer includes the exact duplicates: raw_rows = accepted + rejected +
-- exact_duplicates, three disjoint parts (the conservation check of issue 4). Rows written before the change
-- (recognisable: raw_rows = accepted + rejected while exact duplicates were removed) are brought to that meaning.
UPDATE core.partition_stats
SET accepted = accepted - exact_duplicates
WHERE exact_duplicates > 0 AND raw_rows = accepted + rejected;

COMMENT ON COLUMN core.partition_stats.accepted IS
    'raw rows of the partition that passed validation and are not an exact copy of another accepted row';
COMMENT ON COLUMN core.partition_stats.exact_duplicates IS
    'raw rows that passed validation but repeat another accepted row exactly (dropped before deduplication)';
COMMENT ON TABLE core.partition_stats IS
    'row accounting per partition: raw_rows = accepted + rejected + exact_duplicates';
