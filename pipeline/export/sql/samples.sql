-- The user's raw samples as sent, one HealthSample JSON object per line: the fields the generic NDJSON importer
-- reads (pipeline/ingest/generic.py), instants in UTC, the sample's own zone where it had one. No user id: the file
-- imports into whichever user `healthpipe import --user` names.
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
    'metadata', metadata
)::text
FROM raw.samples
WHERE user_id = {user}
ORDER BY start_utc, identity
