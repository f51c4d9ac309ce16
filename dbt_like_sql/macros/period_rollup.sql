{#- marts.weekly / marts.monthly: the exact roll-up of marts.daily rows into local ISO weeks or calendar months
    (`period`: 'week' or 'month'). Sums and counts add (sums in date order, so rebuilds are bit-identical), min of
    mins, max of maxes; the value follows the metric's aggregation: the sum (cumulative metrics and sleep), sum / count
    (averaged metrics: the mean of every reading of the period, never a mean of daily means), or the latest reading.
    The latest is that of the latest day holding an unflagged sample when there is one, as in marts.daily. An
    incremental build rolls up only the user-periods the run's user-days touch. -#}
{% macro period_rollup(period, start_column) -%}
WITH aggregation AS (
    SELECT * FROM (VALUES {{ aggregation_values() }}) AS a(metric, aggregation)
), days AS (
    {%- if is_incremental() %}
    SELECT d.*, t.period_start
    FROM (SELECT DISTINCT r.user_id, date_trunc('{{ period }}', r.local_date)::date AS period_start
          FROM {{ run_user_days() }} r) t
    JOIN {{ source('marts', 'daily') }} d
      ON d.user_id = t.user_id AND d.local_date >= t.period_start
     AND d.local_date < (t.period_start + interval '1 {{ period }}')::date
    {%- else %}
    SELECT d.*, date_trunc('{{ period }}', d.local_date)::date AS period_start
    FROM {{ source('marts', 'daily') }} d
    {%- endif %}
), rolled AS (
    SELECT user_id, metric, period_start,
           sum(sum ORDER BY local_date) AS sum,
           sum(count)::bigint AS count,
           min(min) AS min,
           max(max) AS max,
           (array_agg(latest_value ORDER BY (flagged_count < count) DESC, latest_at DESC NULLS LAST, local_date DESC))[1]
               AS latest_value,
           coalesce(max(latest_at) FILTER (WHERE flagged_count < count), max(latest_at)) AS latest_at,
           sum(flagged_count)::bigint AS flagged_count,
           count(*)::integer AS days_with_data
    FROM days
    GROUP BY user_id, metric, period_start
)
SELECT r.user_id, r.metric, r.period_start AS {{ start_column }},
       CASE a.aggregation WHEN 'sum' THEN r.sum WHEN 'average' THEN r.sum / r.count ELSE r.latest_value END AS value,
       r.sum, r.count, r.min, r.max, r.latest_value, r.latest_at, r.flagged_count, r.days_with_data
FROM rolled r JOIN aggregation a USING (metric)
{%- endmacro %}
