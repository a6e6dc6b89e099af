with inventory as (
    select * from {{ ref('stg_inventory') }}
),

products as (
    select * from {{ ref('stg_products') }}
),

final as (
    select
        inventory.sku,
        products.family,
        inventory.on_hand,
        inventory.on_hand * products.unit_cost as on_hand_value
    from inventory
    inner join products using (sku)
)

select * from final
