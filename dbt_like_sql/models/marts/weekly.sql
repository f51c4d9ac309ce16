{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_touched({'user_id': 'r.user_id', 'week_start': \"date_trunc('week', r.local_date)::date\"}) }}",
    indexes=[{'columns': ['user_id', 'week_start', 'metric'], 'unique': true}],
) }}
{#- Local ISO weeks (Monday to Sunday of the user's local days). -#}
{{ period_rollup('week', 'week_start') }}
