with source as (
    select * from {{ source('inputs', 'budget') }}
),

typed as (
    select
        {{ as_month('month') }} as month,
        {{ as_text('family') }} as family,
        {{ as_number('volume') }} as volume,
        {{ as_number('revenue') }} as revenue,
        {{ as_number('gross_margin') }} as gross_margin
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
