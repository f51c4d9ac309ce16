-- A user's profile, as the FHIR Patient export shows it (docs/fhir.md): names, administrative gender and birth
-- date, each optional (the export says "unknown" for what is missing). display_name (0002) stays the name the
-- dashboards show. Set with `healthpipe users profile` or PATCH /v1/me/profile, which check the same rules first;
-- these constraints are the last line.

ALTER TABLE app.users
    ADD COLUMN given_name  text CHECK (char_length(given_name) BETWEEN 1 AND 100),
    ADD COLUMN family_name text CHECK (char_length(family_name) BETWEEN 1 AND 100),
    -- FHIR R4 AdministrativeGender (http://hl7.org/fhir/administrative-gender)
    ADD COLUMN gender      text CHECK (gender IN ('male', 'female', 'other', 'unknown')),
    ADD COLUMN birth_date  date CHECK (birth_date >= DATE '1900-01-01');

COMMENT ON COLUMN app.users.given_name IS 'given name(s), as the person writes them; NULL: not given';
COMMENT ON COLUMN app.users.family_name IS 'family name; NULL: not given';
COMMENT ON COLUMN app.users.gender IS 'FHIR administrative gender: male, female, other or unknown; NULL: not given';
COMMENT ON COLUMN app.users.birth_date IS 'date of birth (not in the future, not before 1900); NULL: not given';
