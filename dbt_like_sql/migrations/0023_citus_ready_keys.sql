-- Keys Citus can distribute by user (issue 17; docs/scaling.md, "Running on Citus"; pipeline/infra/distribution.py
-- lists the rules and tests/test_citus_ready.py checks them on the catalogue). On Citus every primary and unique key
-- of a table spread over the workers by user_id must include user_id, and user_id may not be NULL. Three tables
-- broke that; no row is lost or changed other than as said here.
--
-- raw.quarantine and raw.sealed_chunks: a quarantined line that names no user (a malformed line, a record without a
-- user id) had user_id NULL, and so had the sealed chunk of those payloads. They now hold ':unattributed', the subject
-- whose data key those payloads were always sealed with (pipeline/privacy/keyring.py UNATTRIBUTED), so every payload
-- still opens (its ciphertext is bound to that subject, not to the column). No user id can be ':unattributed'
-- (app.users allows no ':'), so no user's rows mix with them and an erasure by user id never reaches them; readers
-- that show quarantined rows turn it back into "no user". The keys become (user_id, id): the ids alone stay unique
-- (an identity column, random uuids), and the user's rows are found through the key's first column.
UPDATE raw.quarantine SET user_id = ':unattributed' WHERE user_id IS NULL;
ALTER TABLE raw.quarantine
    ALTER COLUMN user_id SET NOT NULL,
    DROP CONSTRAINT quarantine_pkey,
    ADD PRIMARY KEY (user_id, quarantine_id);

UPDATE raw.sealed_chunks SET user_id = ':unattributed' WHERE user_id IS NULL;
ALTER TABLE raw.sealed_chunks
    ALTER COLUMN user_id SET NOT NULL,
    DROP CONSTRAINT sealed_chunks_pkey,
    ADD PRIMARY KEY (user_id, chunk_id);
-- the key's leading column serves what this index served
DROP INDEX raw.sealed_chunks_user;

-- marts.insights: the id is a hash of (user, rule, subject, first day), unique by itself; the key adds the user
-- ahead of it. Upserts name (user_id, insight_id) as their conflict target.
ALTER TABLE marts.insights
    DROP CONSTRAINT insights_pkey,
    ADD PRIMARY KEY (user_id, insight_id);

COMMENT ON COLUMN raw.quarantine.user_id IS
    'the user the line named (possibly no existing user); '':unattributed'': the line named none';
COMMENT ON COLUMN raw.sealed_chunks.user_id IS
    'whose data key sealed the chunk; '':unattributed'': the payloads of quarantined lines that named no user';
