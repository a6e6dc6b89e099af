with source as (
    select * from {{ source('inputs', 'bom') }}
),

typed as (
    select
        {{ as_text('sku') }} as sku,
        {{ as_text('material') }} as material,
        {{ as_number('qty_per') }} as qty_per
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
