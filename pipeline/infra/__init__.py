"""Platform plumbing: settings, database URLs and engines, the embedded server, migrations, Dagster home."""
