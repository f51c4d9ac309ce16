-- Every table with a text column named user_id, in any schema but PostgreSQL's own, and per table the tables with a
-- user_id column whose foreign keys reference it (they are emptied of the user first). A partition of a partitioned
-- table is reached through its parent and not listed.
WITH tables AS (
    SELECT c.oid, n.nspname AS table_schema, c.relname AS table_name
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p')
      AND NOT c.relispartition
      AND a.atttypid IN ('text'::regtype, 'varchar'::regtype)
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
)
SELECT t.table_schema, t.table_name,
       coalesce(array_agg(r.table_schema || '.' || r.table_name ORDER BY r.table_schema, r.table_name)
                FILTER (WHERE r.oid IS NOT NULL), '{}') AS referenced_by
FROM tables t
LEFT JOIN pg_constraint fk ON fk.confrelid = t.oid AND fk.contype = 'f' AND fk.conrelid <> t.oid
LEFT JOIN tables r ON r.oid = fk.conrelid
GROUP BY t.table_schema, t.table_name
ORDER BY t.table_schema, t.table_name
