with bom as (
    select * from {{ ref('stg_bom') }}
),

final as (
    select
        sku,
        material,
        qty_per
    from bom
)

select * from final
