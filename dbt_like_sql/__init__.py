"""The warehouse schema: versioned SQL migrations (``migrations/NNNN_name.sql``), applied in order by
``pipeline/infra/migrations.py``. The SQL models the pipeline runs live beside the code that runs them
(``pipeline/samples/sql/``)."""
