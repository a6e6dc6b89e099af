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

{#- dbt would otherwise prefix custom schemas with the target schema (main_staging); BI tools
    expect plain `staging` and `marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
