-- Per-user envelope encryption (docs/privacy.md): profile fields, device names, samples' metadata and quarantined
-- payloads are stored encrypted with their user's data key (AES-256-GCM; the keys live wrapped in a separate key
-- database). Measures, units, instants, time zones, source names and device classes stay plain: the pipeline's
-- set-based SQL reads them.
--
-- The plain columns are renamed *_plain here; the Python step of this migration (pipeline/privacy/migration.py)
-- encrypts what they hold into the new columns, in the same transaction, and drops them. Nothing is lost: a value
-- either moves encrypted or the migration rolls back. The old values stay in dropped-column space on disk until the
-- tables are rewritten: `VACUUM FULL app.users, app.devices, raw.samples, raw.quarantine` after upgrading.

ALTER TABLE app.users RENAME COLUMN display_name TO display_name_plain;
ALTER TABLE app.users RENAME COLUMN given_name TO given_name_plain;
ALTER TABLE app.users RENAME COLUMN family_name TO family_name_plain;
ALTER TABLE app.users RENAME COLUMN gender TO gender_plain;
ALTER TABLE app.users RENAME COLUMN birth_date TO birth_date_plain;
ALTER TABLE app.users
    ADD COLUMN display_name bytea,
    ADD COLUMN given_name   bytea,
    ADD COLUMN family_name  bytea,
    ADD COLUMN gender       bytea,
    ADD COLUMN birth_date   bytea;

ALTER TABLE app.devices RENAME COLUMN name TO name_plain;
ALTER TABLE app.devices ADD COLUMN name bytea;

-- One ciphertext per (user, chunk of landed rows): the metadata of that user's samples in the chunk, or the payloads
-- of their quarantined rows (pipeline/privacy/chunks.py). user_id NULL: a quarantined row that names no user, under
-- the shared key ':unattributed'.
CREATE TABLE raw.sealed_chunks (
    chunk_id   uuid PRIMARY KEY,
    user_id    text,
    sealed     bytea NOT NULL,
    sealed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sealed_chunks_user ON raw.sealed_chunks (user_id);

ALTER TABLE raw.samples RENAME COLUMN metadata TO metadata_plain;
ALTER TABLE raw.samples ADD COLUMN metadata_chunk uuid, ADD COLUMN metadata_slot integer;
ALTER TABLE raw.quarantine RENAME COLUMN payload TO payload_plain;
ALTER TABLE raw.quarantine ADD COLUMN payload_chunk uuid, ADD COLUMN payload_slot integer;

COMMENT ON COLUMN app.users.display_name IS 'encrypted with the user''s data key (pipeline/privacy/fields.py)';
COMMENT ON COLUMN app.users.given_name IS 'encrypted given name(s); NULL: not given';
COMMENT ON COLUMN app.users.family_name IS 'encrypted family name; NULL: not given';
COMMENT ON COLUMN app.users.gender IS 'encrypted FHIR administrative gender; NULL: not given';
COMMENT ON COLUMN app.users.birth_date IS 'encrypted date of birth (ISO 8601); NULL: not given';
COMMENT ON COLUMN app.devices.name IS 'encrypted with the user''s data key';
COMMENT ON COLUMN raw.samples.metadata_chunk IS 'raw.sealed_chunks holding this sample''s metadata; NULL: none';
COMMENT ON COLUMN raw.samples.metadata_slot IS 'position of this sample''s metadata in its sealed chunk';
COMMENT ON COLUMN raw.quarantine.payload_chunk IS 'raw.sealed_chunks holding this row''s payload as received';
COMMENT ON COLUMN raw.quarantine.payload_slot IS 'position of the payload in its sealed chunk';
