{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_touched({'user_id': 'r.user_id', 'month_start': \"date_trunc('month', r.local_date)::date\"}) }}",
    indexes=[{'columns': ['user_id', 'month_start', 'metric'], 'unique': true}],
) }}
{#- Calendar months of the user's local days. -#}
{{ period_rollup('month', 'month_start') }}
