with price_plan as (
    select * from {{ ref('stg_price_plan') }}
),

final as (
    select
        level,
        key,
        month,
        price_change_pct
    from price_plan
)

select * from final
