with resources as (
    select * from {{ ref('stg_resources') }}
),

final as (
    select
        resource,
        plant,
        capacity_hours,
        overtime_hours,
        cost_per_hour,
        overtime_cost_per_hour
    from resources
)

select * from final
