with materials as (
    select * from {{ ref('stg_materials') }}
),

final as (
    select
        material,
        description,
        supplier,
        unit_cost,
        lead_time_months,
        supplier_capacity,
        on_hand
    from materials
)

select * from final
