with indicators as (
    select * from {{ ref('stg_indicators') }}
),

final as (
    select
        month,
        indicator,
        value
    from indicators
)

select * from final
