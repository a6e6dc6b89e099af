with routings as (
    select * from {{ ref('stg_routings') }}
),

resources as (
    select * from {{ ref('stg_resources') }}
),

final as (
    select
        routings.sku,
        routings.resource,
        resources.plant,
        routings.hours_per_unit,
        routings.priority
    from routings
    inner join resources using (resource)
)

select * from final
