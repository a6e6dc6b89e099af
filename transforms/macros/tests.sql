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

{#- Every listed column holds a value, in one query per model: a test per column costs dbt's
    per-node overhead each, for rules the validator has already enforced on the inputs. -#}
{% test not_null_columns(model, columns) %}
select *
from {{ model }}
where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}

{#- Every listed column is zero or more, in one query per model (see not_null_columns). -#}
{% test non_negative_columns(model, columns) %}
select *
from {{ model }}
where {% for column in columns %}{{ column }} < 0{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
