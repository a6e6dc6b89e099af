"""`models/calendar.yaml`: the planning calendar, set once for every step.

The horizon reaches the product review (portfolio months), the forecast (how far it
forecasts), dbt (the months of `marts.dim_month`, passed as a var), the supply plan and the
budget comparison; so a longer horizon is one edit, and no step can plan fewer months than
the others.
"""

from __future__ import annotations

from pydantic import Field

from sop_pipeline.settings.base import StrictModel


class CalendarSettings(StrictModel):
    # Months planned from the cycle month on.
    horizon_months: int = Field(24, ge=12, le=36)
    # Months of sales history before the cycle that the marts keep; older sales are ignored, so
    # a stray row dated decades ago cannot stretch every SKU's history.
    history_months: int = Field(60, ge=24, le=240)
    # First month of the fiscal year (1 = January): fiscal quarters and years start there.
    fiscal_year_start_month: int = Field(1, ge=1, le=12)
