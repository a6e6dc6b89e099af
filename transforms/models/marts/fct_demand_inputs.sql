with demand_inputs as (
    select * from {{ ref('stg_demand_inputs') }}
),

final as (
    select
        layer,
        level,
        key,
        month,
        adjustment_type,
        value,
        owner,
        reason
    from demand_inputs
    where month >= {{ cycle_month() }}
)

select * from final
