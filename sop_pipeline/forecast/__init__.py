"""Statistical forecast of the demand review: one baseline per SKU, with honest uncertainty.

The forecasting idea, in four parts:

1. **Several simple models beat one clever one.** No single method wins on every SKU, and
   choosing per SKU from a short backtest is noisy: the best model on the last year is often
   not the best on the next. A combination of diverse candidates (seasonal naive, exponential
   smoothing, Theta, complex exponential smoothing and a global gradient-boosted model), each
   weighted per SKU by the inverse square of its backtest MASE, keeps every view but gives a
   candidate that tracked the SKU badly little say. Regular SKUs publish that ensemble
   (``selection.method: ensemble``); ``best`` lets a single candidate replace it when clearly
   better. The weights (and any choice) of the backtest forecast at an origin are fitted on the
   months before it only, so the published forecast's reported error is out of sample.
2. **A global model learns what one SKU cannot.** One LightGBM model fitted on every SKU's
   level-normalised log history sees hundreds of seasonal cycles, price changes and
   promotions at once, so it can learn a price elasticity or a promotion lift that a
   48-month series alone could not, and it carries economic indicators when they are given.
3. **Intermittent demand needs its own method.** Slow movers are mostly zeros; smoothing
   models chase the last order. TSB (Teunter-Syntetos-Babai) forecasts demand probability times
   size, a stable rate that is what replenishment needs.
4. **Uncertainty comes from our own past mistakes.** Rather than trusting each model's
   parametric intervals (which assume the model is right), the p10/p90 are empirical quantiles
   of the *backtest errors of the forecast we actually publish*, normalised per SKU by its
   seasonal-naive scale and pooled per segment, with a power law in the horizon step fitted so
   that steps beyond the backtest are extrapolated (conformal-style calibration). The coverage
   we report is measured leave-one-origin-out on the backtest, so it is not fitted to itself.

Everything in this package is a plain function on polars frames (no I/O, no orchestration). darts is the
modelling layer (its statsforecast-backed local models, its regression models for the global
model); numpy holds the SKU x model x origin x step arrays in between, which keeps the
selection, ensembling and calibration vectorised. Local models are fitted per SKU in worker
processes. The backtest is honest but cheap: each local model is refitted once, at the earliest
origin, with the structure its full-history fit selected (ETS components, CES season type), and
that fit re-filters the later origins' histories with its parameters held (darts'
transferable ``predict(series=...)``). No estimated parameter sees the months it is scored on
(only the choice of structure did), and the automatic model search runs once per SKU, not once
per origin.

Where things are: ``sop_pipeline.settings.forecast`` (candidates and knobs, ``models/forecast.yaml``), ``panel``
(history as per-SKU arrays, segments, MASE scale), ``backtest`` (origins, actuals, error
measures), ``local_models`` (per-SKU darts models in worker processes, seasonal naive),
``global_model`` (the cross-SKU regression), ``selection`` (ensemble and per-SKU choice),
``intervals`` (calibrated p10/p90), ``hierarchy`` (family and total forecasts with their own
bands), ``result`` (the output frames) and ``engine`` (``forecast_demand``: the stages in order).
"""

from sop_pipeline.forecast.engine import forecast_demand
from sop_pipeline.forecast.result import ForecastResult

__all__ = ["ForecastResult", "forecast_demand"]
