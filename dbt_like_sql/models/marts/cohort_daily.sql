{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_touched({'local_date': 'r.local_date'}) }}",
    indexes=[{'columns': ['local_date', 'metric'], 'unique': true}],
) }}
{#- Per local day and metric: how many users have a value, and the percentiles of their daily values (continuous,
    interpolated). A run recomputes the days its user-days touch, over every user's rows of those days. -#}
SELECT d.local_date, d.metric,
       count(*)::integer AS users,
       percentile_cont(0.05) WITHIN GROUP (ORDER BY d.value) AS p5,
       percentile_cont(0.25) WITHIN GROUP (ORDER BY d.value) AS p25,
       percentile_cont(0.50) WITHIN GROUP (ORDER BY d.value) AS p50,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY d.value) AS p75,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY d.value) AS p95
FROM {{ source('marts', 'daily') }} d
{%- if is_incremental() %}
WHERE d.local_date IN (SELECT DISTINCT r.local_date FROM {{ run_user_days() }} r)
{%- endif %}
GROUP BY d.local_date, d.metric
