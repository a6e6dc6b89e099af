with source as (
    select * from {{ source('inputs', 'price_plan') }}
),

typed as (
    select
        {{ as_text('level') }} as level,
        {{ as_text('key') }} as key,
        {{ as_month('month') }} as month,
        {{ as_number('price_change_pct') }} as price_change_pct
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
