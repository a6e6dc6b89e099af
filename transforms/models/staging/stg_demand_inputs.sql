with source as (
    select * from {{ source('inputs', 'demand_inputs') }}
),

typed as (
    select
        {{ as_text('layer') }} as layer,
        {{ as_text('level') }} as level,
        {{ as_text('key') }} as key,
        {{ as_month('month') }} as month,
        {{ as_text('adjustment_type') }} as adjustment_type,
        {{ as_number('value') }} as value,
        {{ as_text('owner') }} as owner,
        {{ as_text('reason') }} as reason
    from source
),

final as (
    -- the validator rejects conflicting duplicate keys; exact repeats of a row are dropped here
    select distinct * from typed
)

select * from final
