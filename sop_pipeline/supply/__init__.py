"""Supply review: inventory targets, a constrained supply plan, bottlenecks and scenarios.

The supply review answers one question for the executive meeting: can operations deliver the
consensus demand, and if not, which resource or material stops it and what would one more
hour or one more unit of it be worth? It does so with one linear program per scenario: the
demand, the inventory targets, capacity by resource and month, materials with their lead times
and supplier limits all meet in a single money objective, and HiGHS finds the cheapest plan.
The LP's duals answer the second half of the question: the shadow price of a capacity row is
what one more hour of that resource in that month saves.

How the plan is made, module by module:

1. `targets`: safety stock from the forecast's own p10-p90 spread and the segment's service
   level, plus cycle stock.
2. `inputs`, `scenarios`, `company`: the marts typed, a scenario's overlays applied, then
   everything as dense arrays by SKU, resource, material and month.
3. `items`: planning items. A monolithic SKU-level LP does not scale (about 500k columns at
   5,000 SKUs took HiGHS 140-150 s) and S&OP decides volumes, not SKU schedules. So by default
   the LP plans rough-cut items, a family on its primary resource, on net requirements (what
   each SKU's own stock and open orders leave uncovered), with requirement-weighted average
   hours and bills of materials. `planning.level: sku` plans every SKU instead.
4. `lp`: the LP built from index arithmetic and scipy.sparse, passed to HiGHS in one call;
   primal values and duals come back as arrays.
5. `disaggregate`: a fair-share split of each item's production to its SKUs, then the MRP
   check of that SKU plan against capacity, its own BOMs, lead times and supplier capacity.
   Every output table is written from this executable SKU plan (`plan`).
6. `diagnose`: exceptions per SKU-month with the constraint behind them and a bottleneck
   ranking; `feasibility` re-checks the tables without the solver (the checkpoint).
7. `review`: the baseline and every scenario of a cycle side by side.

Missing data: without any capacity data (resources + routings) and any material data
(materials + bom) there is nothing to plan against and `plan_supply` raises
`SupplyDataMissing`, which the pipeline reports as "supply review skipped". With only one of
the two, the other is planned without limits and the result's `notes` say so; SKUs without a
routing are made without a capacity limit at their standard cost; missing stock or open
orders count as none. Everything here is a plain function on polars frames and numpy arrays;
nothing opens a file and nothing knows about Dagster.
"""
