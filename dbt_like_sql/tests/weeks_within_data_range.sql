{{ config(meta={'dagster': {'ref': {'name': 'weekly'}}}) }}
{#- No week lies outside the weeks of the user's first and last day with data. -#}
WITH span AS (
    SELECT user_id, date_trunc('week', min(local_date))::date AS first_week, date_trunc('week', max(local_date))::date AS last_week
    FROM {{ source('marts', 'daily') }}
    GROUP BY user_id
)
SELECT w.user_id, w.week_start
FROM {{ ref('weekly') }} w
LEFT JOIN span s USING (user_id)
WHERE {{ run_users_filter('w.user_id') }}
  AND (s.user_id IS NULL OR w.week_start < s.first_week OR w.week_start > s.last_week)
