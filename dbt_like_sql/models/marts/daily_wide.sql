{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_touched({'user_id': 'r.user_id', 'local_date': 'r.local_date'}) }}",
    post_hook="{{ comment_wide_columns() }}",
    indexes=[{'columns': ['user_id', 'local_date'], 'unique': true}],
) }}
{#- One row per user-day: each metric's daily value in a column of its own, named after the metric and its canonical
    unit (from the catalogue), NULL where the day has none; hours_with_data counts the local hours with any sample. -#}
WITH days AS (
    {%- if is_incremental() %}
    SELECT d.* FROM {{ source('marts', 'daily') }} d JOIN {{ run_user_days() }} r USING (user_id, local_date)
    {%- else %}
    SELECT d.* FROM {{ source('marts', 'daily') }} d
    {%- endif %}
), hours AS (
    SELECT h.user_id, h.local_date, count(DISTINCT h.hour_start_utc)::integer AS hours_with_data
    FROM {{ source('marts', 'hourly') }} h
    {%- if is_incremental() %}
    JOIN {{ run_user_days() }} r USING (user_id, local_date)
    {%- endif %}
    GROUP BY h.user_id, h.local_date
)
SELECT d.user_id, d.local_date,
       {%- for m in catalogue() %}
       max(d.value) FILTER (WHERE d.metric = {{ catalogue_literal(m.metric) }}) AS {{ adapter.quote(m.column) }},
       {%- endfor %}
       coalesce(max(h.hours_with_data), 0) AS hours_with_data
FROM days d LEFT JOIN hours h USING (user_id, local_date)
GROUP BY d.user_id, d.local_date
