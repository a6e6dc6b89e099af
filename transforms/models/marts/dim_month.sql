-- The calendar of one cycle: every history month with sales and every month of the plan
-- horizon. `cycle` records which cycle the marts were built for, so that the Python steps
-- can refuse to mix one cycle's marts with another cycle's partition.
with first_history_month as (
    select coalesce(min(month), {{ cycle_month() }}) as first_month
    from {{ ref('stg_sales_history') }}
    where month < {{ cycle_month() }}
      and month >= {{ history_start() }}
),

months as (
    select cast(unnest(range(
        (select first_month from first_history_month),
        {{ cycle_month() }} + to_months({{ var('horizon_months') }}),
        interval 1 month
    )) as date) as month
),

final as (
    select
        month,
        '{{ var("cycle") }}' as cycle,
        year(month) as year,
        quarter(month) as quarter,
        month(month) as month_of_year,
        strftime(month, '%Y-%m') as month_label,
        year(month) || '-Q' || quarter(month) as quarter_label,
        case when month < {{ cycle_month() }} then 'history' else 'horizon' end as period,
        datediff('month', {{ cycle_month() }}, month) as months_from_cycle
    from months
)

select * from final
