with source as (
    select * from {{ source('inputs', 'routings') }}
),

typed as (
    select
        {{ as_text('sku') }} as sku,
        {{ as_text('resource') }} as resource,
        {{ as_number('hours_per_unit') }} as hours_per_unit,
        {{ as_integer('priority') }} as priority
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
