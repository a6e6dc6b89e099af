with source as (
    select * from {{ source('inputs', 'products') }}
),

typed as (
    select
        {{ as_text('sku') }} as sku,
        {{ as_text('description') }} as description,
        {{ as_text('family') }} as family,
        {{ as_number('unit_price') }} as unit_price,
        {{ as_number('unit_cost') }} as unit_cost,
        {{ as_text('status') }} as status,
        {{ as_month('launch_month') }} as launch_month,
        {{ as_month('discontinue_month') }} as discontinue_month,
        {{ as_text('like_sku') }} as like_sku,
        {{ as_number('launch_volume') }} as launch_volume
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
