with budget as (
    select * from {{ ref('stg_budget') }}
),

final as (
    select
        month,
        year(month) || '-Q' || quarter(month) as quarter_label,
        family,
        volume,
        revenue,
        gross_margin,
        revenue - gross_margin as cogs
    from budget
)

select * from final
