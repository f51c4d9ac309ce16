-- conservation: partitions whose raw rows are not accepted + rejected + exact duplicates, and the totals of each.
SELECT count(*) FILTER (WHERE t.raw_rows <> t.accepted + t.rejected + t.exact_duplicates),
       coalesce(sum(t.raw_rows), 0), coalesce(sum(t.accepted), 0), coalesce(sum(t.rejected), 0),
       coalesce(sum(t.exact_duplicates), 0)
FROM core.partition_stats t /* run partitions of t */
