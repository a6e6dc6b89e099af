"""A synthetic but plausible company to run the whole S&OP cycle on.

The pipeline is only convincing if the data it runs on behaves like a real business: demand that
is seasonal, trending and noisy, a long tail of slow movers, price changes and promotions that
distort history, products being launched and retired, factories that run out of hours in peak
season and suppliers that cannot always deliver. This package fabricates such a company from a
seed, in exactly the shape declared by :mod:`sop_pipeline.inputs.contract`, so that forecasters, the
consensus step and the supply LP all have something real to chew on.

Everything is drawn from one generative model: an *expected* demand surface per SKU and month
(base volume x family seasonality x trend x price response x macro sensitivity x lifecycle),
from which history is sampled (with promotions and noise) and from which capacities, supplier
limits, stock and budgets are sized. That shared origin is what makes the pieces consistent: the
tight resource is tight because the demand that loads it is seasonal, the budget gap exists
because the family is declining while the budget asks for growth.

The generator is vectorised over SKUs and months (numpy/polars); only tiny dimensions (families,
plants, a few dozen consensus inputs, indicator months) are looped over in Python. Identical
arguments produce byte-identical CSV files.

Conventions of the generated files (the contract leaves them open):

* sales_history has no row for a month without sales (quantity is always >= 1); `promotion` is
  0.0 in months without a promotion, never null; `net_price` is always filled and reflects the
  list price of that month (before a price increase it was lower) minus the promotional discount.
* Quantities (sales, stock, open supply, budget volume, supplier capacity, material stock,
  launch volume) and capacity/overtime hours are whole numbers; hours per unit, qty_per, prices
  and costs are decimals.
* products: every SKU has a `launch_month` (catalogue SKUs: a month before the history window);
  `discontinue_month` only for phase_out; `like_sku` and `launch_volume` only for npi, exactly
  one of the two; `successor_sku` for one phase-out only, naming a new product of its family
  launched by the phase-out's discontinue month. npi SKUs have routings and a BOM (they must be producible once launched) but
  no sales history and no finished-goods stock.
* demand_inputs: `uplift_pct` values are percent (8.0 means +8%); `add` values may be negative
  (a lost listing); sales rows come before marketing rows, so layer order is sales, marketing.
* indicators: long format, two series (consumer_confidence, industrial_production) over the
  history and the 24-month horizon; demand really does respond to them (per family).

The stages live in one module each, in the order they run (`company.py` runs them):
`indicators` (macro series), `families` (seasonality, trend, price history), `skus` (roles,
volumes, like SKUs), `demand` (lifecycle and the expected surface), `lines` (plants,
resources, routings, capacity), `materials` (materials, BOM, cost and price, supplier
capacity), `history` (sampled sales), then the files built from them: `products`, `stock`
(inventory, open supply), `inputs` (demand_inputs), `finance` (budget, price plan). `catalogue`
holds the name tables, `months` the month arithmetic, `files` writes the CSVs.
"""

from sop_pipeline.demo.company import generate_demo_company
from sop_pipeline.demo.files import write_demo_company
from sop_pipeline.demo.months import HORIZON_MONTHS

__all__ = ["HORIZON_MONTHS", "generate_demo_company", "write_demo_company"]
