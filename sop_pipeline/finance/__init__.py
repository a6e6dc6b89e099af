"""Financial review: the plan in money, against the budget, with every gap explained.

The supply review says what operations can deliver, in units. The executive meeting decides in
money: what the plan earns, how far it lands from the budget and why, and what closing the gap
would cost. This step prices every scenario's constrained plan and the unconstrained consensus
with the same prices and standard costs, so that the three views (what customers want, what
operations can ship, what the budget promised) differ only by what really differs between them:
volume the plant cannot make, demand the market does not bring, prices that moved. Each such
difference is a row of the reconciliation with its cause; the checks only prove that the
numbers tie out, because a gap is a finding for the meeting, not an error.

Conventions, chosen once for every table here:

* Shipped units. The supply plan's `shortfall` is the month-end backlog with backorders (the
  default of `models/supply.yaml`), the lost units with lost sales. Shipped in a month is
  demand + last month's backlog - this month's backlog (backorder) or demand - shortfall (lost
  sales); both reduce to "demand - shortfall" when nothing is carried over. Revenue follows the
  shipped units, so a backlog recovered next month is revenue next month.
* Standard cost per unit = material (BOM qty_per x material unit_cost) + conversion (hours per
  unit of the SKU's preferred routing, `sop_pipeline.rules.preferred_routings`, x the resource's
  cost_per_hour). A
  SKU with neither BOM nor routing is a bought-in good: its product-master unit_cost counts as
  material. COGS = shipped units x standard cost + the overtime premium of the month.
* Overtime. Standard conversion already pays every hour at the regular rate, so an overtime
  hour adds only its premium, overtime_cost_per_hour - cost_per_hour (floored at zero), as the
  supply review's LP does. The premium is a period cost of the month it is worked in, allocated
  to families by their share of the resource's load hours that month (production x preferred
  routing hours; all routings if no preferred routing loads it; the family's share of
  production if no routing does).
* Inventory value = month-end stock x standard cost, without the overtime premium.
* Prices: product-master unit_price changed by the optional price plan (`price_by_sku_month`);
  the same price values the constrained and the unconstrained plan.

Modules: `prices`, `costs`, `plan` (the financial plan), `budget`, `bridge`, `reconciliation`,
`scenarios`, `checks` (the checkpoint's rules) and `review` (all of it for a cycle). Everything
is a plain function on polars frames; nothing opens a file and nothing knows about Dagster.
"""
