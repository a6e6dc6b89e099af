-- Receipts already committed. Receipts dated before the cycle month are overdue: they are
-- expected in the cycle month, so they move there instead of vanishing.
with open_supply as (
    select * from {{ ref('stg_open_supply') }}
),

final as (
    select
        item_type,
        item,
        greatest(month, {{ cycle_month() }}) as month,
        sum(quantity) as quantity
    from open_supply
    group by item_type, item, greatest(month, {{ cycle_month() }})
)

select * from final
