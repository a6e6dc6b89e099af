"""Constants and the one exception every part of the supply review shares."""

from __future__ import annotations

import numpy as np

# p90 - p10 of a standard normal distribution: (p90 - p10) / 2.563 estimates sigma.
P10_P90_SPAN = 2.5631031


# Quantities below this are solver noise, not a shortage or a load.
QTY_TOL = 1e-3


# An exception in month t is explained by constraints binding in months t-3..t.
EXPLAIN_LOOKBACK_MONTHS = 3


class SupplyDataMissing(Exception):
    """The company handed over no capacity and no material data: there is nothing to plan against.

    The orchestration layer turns this into a "supply review skipped" message rather than a
    failed run, as the product design asks for steps whose inputs are absent.
    """


def shortfall_cost(price: np.ndarray, cost: np.ndarray, months: int, costs) -> np.ndarray:
    """Money per unit of shortfall (S) per SKU and month, an (n, months) array: what the LP
    minimises and what the financial plan books, from `models/supply.yaml` costs.

    Backorders: S is the month-end backlog; each unit costs late_cost_rate_per_month x
    max(price, cost) per month, and in the last month also its price (it will not ship inside
    the horizon: that revenue is lost to the plan). Lost sales: S is the units lost; each
    costs its price (the revenue) plus lost_sale_cost_rate x max(price, cost). The LP has no
    revenue term, so charging lost revenue as a cost makes it maximise margin.
    """
    price, cost = np.asarray(price, dtype=float), np.asarray(cost, dtype=float)
    base = np.maximum(price, cost)[:, None] * np.ones((1, months))
    if costs.shortfall_mode == "lost_sales":
        return price[:, None] + costs.lost_sale_cost_rate * base
    out = costs.late_cost_rate_per_month * base
    out[:, -1] += price
    return out
