with source as (
    select * from {{ source('inputs', 'materials') }}
),

typed as (
    select
        {{ as_text('material') }} as material,
        {{ as_text('description') }} as description,
        {{ as_text('supplier') }} as supplier,
        {{ as_number('unit_cost') }} as unit_cost,
        {{ as_integer('lead_time_months') }} as lead_time_months,
        {{ as_number('supplier_capacity') }} as supplier_capacity,
        {{ as_number('on_hand') }} as on_hand
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
