with source as (
    select * from {{ source('inputs', 'inventory') }}
),

typed as (
    select
        {{ as_text('sku') }} as sku,
        {{ as_number('on_hand') }} as on_hand
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
