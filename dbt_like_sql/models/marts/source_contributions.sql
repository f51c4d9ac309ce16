{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_touched({'user_id': 'r.user_id', 'local_date': 'r.local_date'}) }}",
    indexes=[{'columns': ['user_id', 'local_date']}],
) }}
{#- What each source reported and what of it the deduplication kept, per user, day and metric. -#}
SELECT t.user_id, t.local_date, t.metric, t.source_name, t.device_class,
       t.raw AS raw_total,
       t.kept AS kept_total,
       t.kept / nullif(sum(t.kept) OVER (PARTITION BY t.user_id, t.local_date, t.metric), 0) AS kept_share
FROM {{ source('core', 'source_totals') }} t
{%- if is_incremental() %}
JOIN {{ run_user_days() }} r USING (user_id, local_date)
{%- endif %}
