with products as (
    select * from {{ ref('stg_products') }}
),

sales as (
    select * from {{ ref('stg_sales_history') }}
    where month < {{ cycle_month() }}
),

sales_span as (
    select
        sku,
        min(month) filter (where quantity > 0) as first_sale_month,
        max(month) filter (where quantity > 0) as last_sale_month,
        sum(quantity) as lifetime_quantity
    from sales
    group by sku
),

final as (
    select
        products.sku,
        products.description,
        products.family,
        products.unit_price,
        products.unit_cost,
        products.status,
        products.launch_month,
        products.discontinue_month,
        products.like_sku,
        products.launch_volume,
        products.successor_sku,
        sales_span.first_sale_month,
        sales_span.last_sale_month,
        coalesce(sales_span.lifetime_quantity, 0) as lifetime_quantity
    from products
    left join sales_span using (sku)
)

select * from final
