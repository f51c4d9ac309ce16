{{ config(meta={'dagster': {'ref': {'name': 'weekly'}}}) }}
{#- For cumulative metrics a week's value is the sum of its days' values (to a relative 1e-9). -#}
WITH daily AS (
    SELECT d.user_id, d.metric, date_trunc('week', d.local_date)::date AS week_start, sum(d.value) AS value
    FROM {{ source('marts', 'daily') }} d
    JOIN {{ ref('metrics') }} m USING (metric)
    WHERE m.aggregation = 'sum'
    GROUP BY 1, 2, 3
)
SELECT w.user_id, w.metric, w.week_start, w.value, d.value AS daily_sum
FROM {{ ref('weekly') }} w
JOIN {{ ref('metrics') }} m USING (metric)
LEFT JOIN daily d USING (user_id, metric, week_start)
WHERE m.aggregation = 'sum'
  AND {{ run_users_filter('w.user_id') }}
  AND (d.value IS NULL OR abs(w.value - d.value) > 1e-9 * greatest(1, abs(d.value)))
