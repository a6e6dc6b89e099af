-- One row per SKU and month, from the SKU's first sale (within the history window) to the
-- month before the cycle. Months with no sales row are zeros: forecasting and variability
-- measures need the gaps as zeros, not as missing months.
with sales as (
    select * from {{ ref('stg_sales_history') }}
    where month < {{ cycle_month() }}
      and month >= {{ history_start() }}
),

products as (
    select * from {{ ref('stg_products') }}
),

monthly as (
    select
        sku,
        month,
        sum(quantity) as quantity,
        sum(quantity * net_price) / nullif(sum(quantity) filter (where net_price is not null), 0) as net_price,
        max(promotion) as promotion
    from sales
    group by sku, month
),

first_sale as (
    select
        sku,
        min(month) as first_month
    from monthly
    where quantity > 0
    group by sku
),

calendar as (
    select cast(unnest(range(
        (select min(first_month) from first_sale),
        {{ cycle_month() }},
        interval 1 month
    )) as date) as month
),

grid as (
    select
        first_sale.sku,
        calendar.month
    from first_sale
    inner join calendar on calendar.month >= first_sale.first_month
),

final as (
    select
        grid.sku,
        products.family,
        grid.month,
        coalesce(monthly.quantity, 0) as quantity,
        coalesce(monthly.net_price, products.unit_price) as net_price,
        coalesce(monthly.promotion, 0) as promotion,
        coalesce(monthly.quantity, 0) * coalesce(monthly.net_price, products.unit_price) as revenue
    from grid
    inner join products using (sku)
    left join monthly using (sku, month)
)

select * from final
