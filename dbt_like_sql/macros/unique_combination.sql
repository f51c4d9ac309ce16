{#- No two rows share the values of `columns` (a model's key). -#}
{% test unique_combination(model, columns) %}
SELECT {{ columns | join(", ") }}, count(*) AS rows
FROM {{ model }}
GROUP BY {{ columns | join(", ") }}
HAVING count(*) > 1
{% endtest %}
