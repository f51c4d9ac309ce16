"""SQL assets of the project: versioned schema migrations (``migrations/``) and dbt-style SQL models."""
