with source as (
    select * from {{ source('inputs', 'indicators') }}
),

typed as (
    select
        {{ as_month('month') }} as month,
        {{ as_text('indicator') }} as indicator,
        {{ as_number('value') }} as value
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
