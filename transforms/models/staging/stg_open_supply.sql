with source as (
    select * from {{ source('inputs', 'open_supply') }}
),

typed as (
    select
        {{ as_text('item_type') }} as item_type,
        {{ as_text('item') }} as item,
        {{ as_month('month') }} as month,
        {{ as_number('quantity') }} as quantity
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
