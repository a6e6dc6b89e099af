{#- Staging receives every column as text (CSV read with all_varchar, Parquet cast to text) so
    that one set of parsing rules applies whatever the file format. The Python validator has
    already rejected values these casts could not parse, with the file, row and column named. -#}

{% macro as_text(column) -%}
    nullif(trim(cast("{{ column }}" as varchar)), '')
{%- endmacro %}

{% macro as_number(column) -%}
    cast(nullif(trim(cast("{{ column }}" as varchar)), '') as double)
{%- endmacro %}

{% macro as_integer(column) -%}
    cast(cast(nullif(trim(cast("{{ column }}" as varchar)), '') as double) as integer)
{%- endmacro %}

{#- Months arrive as YYYY-MM (or a date such as 2026-11-01 from Parquet); they become the first
    day of the month as a DATE. -#}
{% macro as_month(column) -%}
    cast(strptime(left(nullif(trim(cast("{{ column }}" as varchar)), ''), 7) || '-01', '%Y-%m-%d') as date)
{%- endmacro %}

{#- The first month of the plan: the cycle var as a DATE. -#}
{% macro cycle_month() -%}
    cast(strptime('{{ var("cycle") }}' || '-01', '%Y-%m-%d') as date)
{%- endmacro %}

{#- The first month of the history the marts keep: `history_months` before the cycle. -#}
{% macro history_start() -%}
    ({{ cycle_month() }} - to_months({{ var("history_months") }}))
{%- endmacro %}

{#- dbt would otherwise prefix custom schemas with the target schema (main_staging); BI tools
    expect plain `staging` and `marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{#- One typed column of an input file, by the kind the contract gives it (source YAML `meta.cast`). -#}
{% macro cast_input(column, kind) -%}
    {%- if kind == 'number' -%}{{ as_number(column) }}
    {%- elif kind == 'integer' -%}{{ as_integer(column) }}
    {%- elif kind == 'month' -%}{{ as_month(column) }}
    {%- else -%}{{ as_text(column) }}{%- endif -%}
{%- endmacro %}

{#- A staging model: the input file's contract columns, typed, exact repeats dropped (the
    validator already rejected conflicting duplicate keys). The column list comes from the
    generated `_sources.yml`, so every staging model is this one macro. -#}
{% macro stage_input(name) -%}
{%- set columns = graph.sources['source.sop_transforms.inputs.' ~ name].columns.values() | list if execute else [] -%}
with source as (
    select * from {{ source('inputs', name) }}
),

typed as (
    select
    {%- for column in columns %}
        {{ cast_input(column.name, column.meta.get('cast', 'text')) }} as "{{ column.name }}"{{ "," if not loop.last }}
    {%- endfor %}
    {%- if not columns %} *{% endif %}
    from source
),

final as (
    select distinct * from typed
)

select * from final
{%- endmacro %}
