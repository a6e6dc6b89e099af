{#- Staging reads the typed Parquet files the Python validator wrote (one per input file): the
    validator has already rejected every value these casts could not hold, naming file, column
    and row, so a cast here only states the type BI tools and the marts rely on. -#}

{% macro as_text(column) -%} cast("{{ column }}" as varchar) {%- endmacro %}

{% macro as_number(column) -%} cast("{{ column }}" as double) {%- endmacro %}

{% macro as_integer(column) -%} cast("{{ column }}" as bigint) {%- endmacro %}

{% macro as_month(column) -%} cast("{{ column }}" as date) {%- endmacro %}

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

{#- A staging model: the input file's contract columns, typed, and `_source_row`, the row of the
    company's file each row came from (dbt test failures are reported with it). The column list
    comes from the generated `_sources.yml`, so every staging model is this one macro. -#}
{% macro stage_input(name) -%}
{%- set columns = graph.sources['source.sop_transforms.inputs.' ~ name].columns.values() | list if execute else [] -%}
with source as (
    select * from {{ source('inputs', name) }}
),

typed as (
    select
    {%- for column in columns %}
        {{ cast_input(column.name, column.meta.get('cast', 'text')) }} as "{{ column.name }}",
    {%- endfor %}
        cast("_row" as bigint) as _source_row
    from source
),

final as (
    select * from typed
)

select * from final
{%- endmacro %}
