"""The analyst marts: the dbt project in ``dbt_like_sql/`` and its Dagster assets."""
