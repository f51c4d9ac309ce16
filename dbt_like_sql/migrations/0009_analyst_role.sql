-- The analyst role: reads the validated layer (core) and the aggregates (marts), and nothing else. No USAGE on raw
-- (landed samples, quarantined rejects) or app (names, time zones, API key hashes, devices): a table there cannot be
-- read even by name. `healthpipe db url --role analyst` prints its connection string (docs/analysts.md).
--
-- LOGIN without a password: where the server asks for one (any managed or production server), nobody can log in as
-- analyst until the operator sets one (`healthpipe db analyst-password`); the embedded server trusts connections
-- from this machine, as it does for its superuser. No password is ever written here.
--
-- Roles belong to the whole server, grants to one database: several databases on one server (one per test, or a
-- staging copy) each run this migration, the first creates the role, every one grants. A role of that name that
-- already exists is kept as it is (only the grants below are added to it). Two databases migrating at the same
-- moment may both see no role and both create it: the second one's duplicate is ignored. A migrating role that may
-- not create roles (no CREATEROLE) stops here with what to do; the migration is then not recorded and reruns.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'analyst') THEN
        CREATE ROLE analyst LOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'role % may not create roles: have an administrator run CREATE ROLE analyst LOGIN once, '
            'then migrate again', current_user;
END
$$;

GRANT USAGE ON SCHEMA core, marts TO analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA core, marts TO analyst;
-- Tables created later in core and marts (new migrations, the dbt models) by the role running this migration: the
-- warehouse URL's role, which also runs the pipeline and dbt. A table created there by another role needs
-- `ALTER DEFAULT PRIVILEGES FOR ROLE that_role IN SCHEMA core, marts GRANT SELECT ON TABLES TO analyst`.
ALTER DEFAULT PRIVILEGES IN SCHEMA core, marts GRANT SELECT ON TABLES TO analyst;
