{#- Quantities, prices and hours are never negative: a negative value in a mart would turn into
    negative demand or capacity downstream. -#}
{% test non_negative(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} < 0
{% endtest %}

{#- A composite key (sku and month, say) is unique: dbt's built-in `unique` covers one column. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
