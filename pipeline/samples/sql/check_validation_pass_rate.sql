-- validation_pass_rate: the share of raw rows that passed validation (exact duplicates passed it too); 1 without rows.
SELECT coalesce(sum(t.accepted + t.exact_duplicates)::float / nullif(sum(t.raw_rows), 0), 1)
FROM core.partition_stats t /* run partitions of t */
