"""Constants and the one exception every part of the supply review shares."""

from __future__ import annotations

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
