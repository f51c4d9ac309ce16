{#- The Dagster run whose user-days (app.run_user_days) an incremental build recomputes. An environment variable, not
    a var: a var that changes with every run makes dbt parse the whole project again each time, while a changed
    environment variable re-parses only the files that read it. -#}
{% macro run_id() -%}
    {{ return(env_var('HEALTHPIPE_DBT_RUN_ID', '')) }}
{%- endmacro %}

{#- The user-days of the run being computed (app.run_user_days, written by the Dagster step under its run id),
    for incremental builds. -#}
{% macro run_user_days() -%}
    (SELECT user_id, local_date FROM app.run_user_days WHERE run_id = {{ catalogue_literal(run_id()) }})
{%- endmacro %}

{#- Before an incremental build of a model keyed by `keys`: delete the rows whose keys the run's user-days touch
    (`keys` maps a column of the model to an expression over user_id and local_date). The delete runs in the model's
    transaction, before its insert: the model is replaced for those keys at once or not at all. -#}
{% macro delete_touched(keys) -%}
    {%- if is_incremental() -%}
    DELETE FROM {{ this }} t
    USING (SELECT DISTINCT {% for column, expression in keys.items() %}{{ expression }} AS {{ column }}{{ ", " if not loop.last }}{% endfor %}
           FROM {{ run_user_days() }} r) touched
    WHERE {% for column in keys %}t.{{ column }} = touched.{{ column }}{{ " AND " if not loop.last }}{% endfor %}
    {%- else -%}
    SELECT 1
    {%- endif -%}
{%- endmacro %}

{#- In a data test: only the run's users when it runs inside a range run (another run may have committed daily rows
    whose marts its own build has not made yet), every user otherwise. -#}
{% macro run_users_filter(column) -%}
    {%- if run_id() -%}
    {{ column }} IN (SELECT DISTINCT user_id FROM {{ run_user_days() }} r)
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}
