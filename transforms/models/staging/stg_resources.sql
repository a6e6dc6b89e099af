with source as (
    select * from {{ source('inputs', 'resources') }}
),

typed as (
    select
        {{ as_text('resource') }} as resource,
        {{ as_text('plant') }} as plant,
        {{ as_number('capacity_hours') }} as capacity_hours,
        {{ as_number('overtime_hours') }} as overtime_hours,
        {{ as_number('cost_per_hour') }} as cost_per_hour,
        {{ as_number('overtime_cost_per_hour') }} as overtime_cost_per_hour
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
