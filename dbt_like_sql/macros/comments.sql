{#- The data dictionary in the database: the descriptions of the sources (the migration-owned tables marts.hourly,
    marts.daily and core.*) applied as COMMENTs, so psql's \d+ shows them as it shows those of the dbt models
    (persist_docs). Run at the end of every build: the YAML is the one source of truth. -#}
{% macro comment_sources() -%}
    {%- if execute -%}
    {%- set statements = [] -%}
    {%- for source in graph.sources.values() if source.description -%}
        {%- set relation = adapter.quote(source.schema) ~ "." ~ adapter.quote(source.identifier) -%}
        {%- do statements.append("COMMENT ON TABLE " ~ relation ~ " IS " ~ catalogue_literal(source.description)) -%}
        {%- for column in source.columns.values() if column.description -%}
            {%- do statements.append("COMMENT ON COLUMN " ~ relation ~ "." ~ adapter.quote(column.name) ~ " IS " ~ catalogue_literal(column.description)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ statements | join(";\n") }}
    {%- endif -%}
{%- endmacro %}

{#- marts.daily_wide's metric columns come from the catalogue, so their comments do too. -#}
{% macro comment_wide_columns() -%}
    {%- for m in catalogue() -%}
    COMMENT ON COLUMN {{ this }}.{{ adapter.quote(m.column) }} IS {{ catalogue_literal(m.display_name ~ ' of the day (' ~ m.unit ~ '), ' ~ m.value_meaning ~ ' (marts.daily.value); NULL when the day has no data of it') }};
    {% endfor -%}
{%- endmacro %}
