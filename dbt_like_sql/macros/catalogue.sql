{#- The metric catalogue (pipeline/catalog.py), passed by healthpipe as the var `metrics`: a list of
    {metric, display_name, unit, ucum, aggregation, value_meaning, loinc, loinc_daily, column}. -#}
{% macro catalogue() -%}
    {%- set metrics = var('metrics', none) -%}
    {%- if metrics is none -%}
        {{ exceptions.raise_compiler_error("var 'metrics' is missing: run dbt through healthpipe (pipeline/marts/project.py), which passes the catalogue") }}
    {%- endif -%}
    {{ return(metrics) }}
{%- endmacro %}

{#- A SQL string literal of a catalogue value (NULL for none). -#}
{% macro catalogue_literal(value) -%}
    {%- if value is none -%}NULL{%- else -%}'{{ value | replace("'", "''") }}'{%- endif -%}
{%- endmacro %}

{#- VALUES rows (metric, aggregation) of every catalogue metric. -#}
{% macro aggregation_values() -%}
    {%- for m in catalogue() %}({{ catalogue_literal(m.metric) }}, {{ catalogue_literal(m.aggregation) }}){{ "," if not loop.last }}{% endfor -%}
{%- endmacro %}
