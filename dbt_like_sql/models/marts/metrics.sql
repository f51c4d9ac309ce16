{{ config(materialized='table') }}
{#- The metric catalogue (pipeline/catalog.py) as a table: passed by healthpipe as the var `metrics`, never listed
    here. It reads no table; the dependency below puts it downstream of the daily marts, so it is rebuilt in the same
    range runs as the other marts (their tests look metrics up in it) and follows the code's catalogue. -#}
-- depends_on: {{ source('marts', 'daily') }}
SELECT metric, display_name, unit, ucum, aggregation, value_meaning, loinc, loinc_daily, wide_column
FROM (VALUES
    {%- for m in catalogue() %}
    ({{ catalogue_literal(m.metric) }}, {{ catalogue_literal(m.display_name) }}, {{ catalogue_literal(m.unit) }},
     {{ catalogue_literal(m.ucum) }}, {{ catalogue_literal(m.aggregation) }}, {{ catalogue_literal(m.value_meaning) }},
     {{ catalogue_literal(m.loinc) }}, {{ catalogue_literal(m.loinc_daily) }}::text, {{ catalogue_literal(m.column) }}){{ "," if not loop.last }}
    {%- endfor %}
) AS catalogue(metric, display_name, unit, ucum, aggregation, value_meaning, loinc, loinc_daily, wide_column)
