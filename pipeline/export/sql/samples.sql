-- The user's raw samples as sent, one HealthSample JSON object per line: the fields the generic NDJSON importer
-- reads (pipeline/ingest/generic.py), instants in UTC, the sample's own zone where it had one. No user id: the file
-- imports into whichever user `healthpipe import --user` names. The metadata, sealed in the database, comes decrypted
-- from the session's temporary table export_metadata (pipeline/export/archive.py).
SELECT json_build_object(
    'type', metric,
    'value', value,
    'unit', unit,
    'startDate', to_char(start_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'endDate', to_char(end_utc AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'sourceDevice', source_name,
    'deviceClass', device_class,
    'sourceApp', source_app,
    'device', device,
    'id', external_id,
    'stage', stage,
    'timezone', timezone,
    'metadata', m.metadata::json
)::text
FROM raw.samples s
LEFT JOIN export_metadata m ON m.chunk_id = s.metadata_chunk AND m.slot = s.metadata_slot
WHERE s.user_id = {user}
ORDER BY s.start_utc, s.identity
