with source as (
    select * from {{ source('inputs', 'sales_history') }}
),

typed as (
    select
        {{ as_month('month') }} as month,
        {{ as_text('sku') }} as sku,
        {{ as_number('quantity') }} as quantity,
        {{ as_number('net_price') }} as net_price,
        {{ as_number('promotion') }} as promotion
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
