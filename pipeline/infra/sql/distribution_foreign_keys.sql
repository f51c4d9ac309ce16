-- Every foreign key with either end in the given schemas (a partition's copy of its parent's key left out), and
-- whether it pairs the referencing table's user_id with the referenced table's user_id.
SELECT con.conname::text AS constraint_name,
       sn.nspname || '.' || s.relname AS referencing,
       dn.nspname || '.' || d.relname AS referenced,
       EXISTS (
           SELECT 1
           FROM unnest(con.conkey, con.confkey) AS k(from_attnum, to_attnum)
           JOIN pg_attribute fa ON fa.attrelid = con.conrelid AND fa.attnum = k.from_attnum
           JOIN pg_attribute ta ON ta.attrelid = con.confrelid AND ta.attnum = k.to_attnum
           WHERE fa.attname = 'user_id' AND ta.attname = 'user_id'
       ) AS pairs_user_id
FROM pg_constraint con
JOIN pg_class s ON s.oid = con.conrelid
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class d ON d.oid = con.confrelid
JOIN pg_namespace dn ON dn.oid = d.relnamespace
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND (sn.nspname = ANY(%(schemas)s) OR dn.nspname = ANY(%(schemas)s))
ORDER BY referencing, constraint_name
