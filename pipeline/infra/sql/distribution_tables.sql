-- Every table of the given schemas (a partition is reached through its parent): whether it has a user_id
-- column, whether that column is NOT NULL, and the names of its unique and exclusion indexes (primary keys, UNIQUE
-- constraints, unique indexes) whose key columns leave user_id out. INCLUDE columns are not key columns.
SELECT n.nspname AS table_schema,
       c.relname AS table_name,
       a.attnum IS NOT NULL AS has_user_id,
       coalesce(a.attnotnull, false) AS user_id_not_null,
       coalesce(array_agg(i.relname::text ORDER BY i.relname) FILTER (WHERE i.oid IS NOT NULL), '{}') AS keys_without_user_id
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped
LEFT JOIN pg_index x ON x.indrelid = c.oid
    AND (x.indisunique OR x.indisexclusion)
    AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, position)
                    WHERE k.position <= x.indnkeyatts AND k.attnum = a.attnum)
LEFT JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname = ANY(%(schemas)s)
GROUP BY n.nspname, c.relname, a.attnum, a.attnotnull
ORDER BY n.nspname, c.relname
