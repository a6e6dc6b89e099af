"""The forecast's result: `ForecastResult` and the polars frames built from the engine's
arrays (forecast, backtest, errors, selection, candidate forecasts, metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from sop_pipeline.forecast.backtest import _Backtest, _errors, _summary
from sop_pipeline.forecast.intervals import _Bands
from sop_pipeline.forecast.panel import _index_to_date, _Profile
from sop_pipeline.forecast.selection import FALLBACK, PUBLISHED, _Candidates, _Choice
from sop_pipeline.settings.forecast import REGULAR, ForecastSettings


@dataclass
class ForecastResult:
    """Everything the demand review needs from the statistical forecast.

    * ``forecast``: sku, month, model, p10, p50, p90 for every SKU and horizon month.
    * ``backtest``: long table, one row per sku, model, origin, horizon_step with the actual
      and that model's forecast; ``model`` includes every candidate, ``ensemble`` and
      ``published``: the published forecast's nested backtest, where at each origin the
      ensemble weights and the choice were fitted on earlier months only (its error is the
      honest one the gate and the metrics report).
    * ``backtest_errors``: the same aggregated per sku x model: n, wape, mase (m=season
      length), smape, bias (sum(forecast - actual) / sum(actual)).
    * ``selection``: per SKU the segment, the published model, why, and its backtest error next
      to seasonal naive's.
    * ``coverage``: share of backtest actuals inside [p10, p90], calibrated leave-one-origin-out.
    * ``metrics``: overall backtest WAPE / sMAPE / MASE of the published forecast and of
      seasonal naive on the same points, plus counts and timings.
    * ``candidate_forecasts``: sku, model, month, forecast - what every candidate (and the
      ensemble) said for the horizon, so a planner can see the spread the median hides.
    """

    forecast: pl.DataFrame
    backtest: pl.DataFrame
    backtest_errors: pl.DataFrame
    selection: pl.DataFrame
    coverage: float
    metrics: dict[str, Any]
    candidate_forecasts: pl.DataFrame | None = None


def _result(
    skus: list[str],
    geo: _Backtest,
    prof: _Profile,
    cands: _Candidates,
    choice: _Choice,
    bands: _Bands,
    settings: ForecastSettings,
    seconds: dict[str, float],
) -> ForecastResult:
    """The frames of one forecast; `seconds` are timings to report as metrics `seconds_<key>`."""
    sku = np.array(skus, dtype=object)
    label = np.array(cands.names, dtype=object)
    published = _published_names(cands, choice, settings)
    # the published forecast's own (nested) backtest sits beside the candidates' as PUBLISHED
    with_pub = np.array([*cands.names, PUBLISHED], dtype=object)
    pub_err = _errors(choice.bt[None], geo.act[None], prof.scale[None])
    errors = {k: np.concatenate([v, pub_err[k]], axis=0) for k, v in choice.errors.items()}
    return ForecastResult(
        forecast=_forecast_frame(sku, published, bands, geo),
        backtest=_backtest_frame(sku, with_pub, np.concatenate([cands.bt, choice.bt[None]], axis=0), geo),
        backtest_errors=_errors_frame(sku, with_pub, errors),
        selection=_selection_frame(sku, published, prof, cands, choice, settings, {k: v[0] for k, v in pub_err.items()}),
        coverage=bands.coverage,
        metrics=_metrics(geo, prof, cands, choice, bands, seconds),
        candidate_forecasts=_candidates_frame(sku, label, cands.final, geo),
    )


def _published_names(cands: _Candidates, choice: _Choice, settings: ForecastSettings) -> np.ndarray:
    """The published model per SKU; an ensemble names the members that voted for that SKU."""
    votes = cands.members[:, None] & cands.usable[:-1]
    voted = (
        pl.select(
            pl.concat_str(
                [pl.when(pl.lit(pl.Series(votes[j]))).then(pl.lit(nm)) for j, nm in enumerate(cands.names[:-1])],
                separator=",",
                ignore_nulls=True,
            )
        )
        .to_series()
        .to_numpy()
        .astype(object)
    )
    label = np.array(cands.names, dtype=object)[choice.chosen]
    single = np.where(choice.no_model, FALLBACK, label).astype(object)
    return np.where(choice.is_ensemble, f"ensemble:{settings.selection.ensemble.combine}(" + voted + ")", single).astype(object)


def _forecast_frame(sku: np.ndarray, published: np.ndarray, bands: _Bands, geo: _Backtest) -> pl.DataFrame:
    n, H = bands.p50.shape
    months = _index_to_date(np.arange(geo.c, geo.c + H))
    return pl.DataFrame(
        {
            "sku": np.repeat(sku, H).tolist(),
            "month": pl.concat([months] * n) if n else pl.Series([], dtype=pl.Date),
            "model": np.repeat(published, H).tolist(),
            "p10": bands.p10.ravel(),
            "p50": bands.p50.ravel(),
            "p90": bands.p90.ravel(),
        },
        schema={"sku": pl.String, "month": pl.Date, "model": pl.String, "p10": pl.Float64, "p50": pl.Float64, "p90": pl.Float64},
    )


def _backtest_frame(sku: np.ndarray, label: np.ndarray, bt: np.ndarray, geo: _Backtest) -> pl.DataFrame:
    jj, ii, bb, ss = np.nonzero(np.isfinite(bt) & np.isfinite(geo.act)[None])
    return pl.DataFrame(
        {
            "sku": sku[ii].tolist(),
            "model": label[jj].tolist(),
            "origin": _index_to_date(geo.origins[bb]) if ii.size else pl.Series([], dtype=pl.Date),
            "horizon_step": (ss + 1).astype(np.int32),
            "actual": geo.act[ii, bb, ss],
            "forecast": bt[jj, ii, bb, ss],
        },
        schema={
            "sku": pl.String,
            "model": pl.String,
            "origin": pl.Date,
            "horizon_step": pl.Int32,
            "actual": pl.Float64,
            "forecast": pl.Float64,
        },
    )


def _errors_frame(sku: np.ndarray, label: np.ndarray, err: dict[str, np.ndarray]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sku": np.tile(sku, label.size).tolist(),
            "model": np.repeat(label, sku.size).tolist(),
            "n": err["n"].ravel().astype(np.int64),
            "wape": err["wape"].ravel(),
            "mase": err["mase"].ravel(),
            "smape": err["smape"].ravel(),
            "bias": err["bias"].ravel(),
        }
    ).with_columns(pl.col(c_).fill_nan(None) for c_ in ("wape", "mase", "smape", "bias"))


def _naive_index(cands: _Candidates) -> int | None:
    """Position of seasonal naive, the yardstick the selection and the metrics report against."""
    return cands.names.index("seasonal_naive") if "seasonal_naive" in cands.names[:-1] else None


def _selection_frame(
    sku: np.ndarray,
    published: np.ndarray,
    prof: _Profile,
    cands: _Candidates,
    choice: _Choice,
    settings: ForecastSettings,
    pub_err: dict[str, np.ndarray],
) -> pl.DataFrame:
    n = sku.size
    sn_j = _naive_index(cands)
    metric = settings.selection.metric
    err = choice.errors[metric]
    no_model, is_ens = choice.no_model, choice.is_ensemble
    reason = np.where(
        no_model,
        "history too short for any candidate: mean of recent months",
        np.where(
            ~choice.has_score,
            "no backtest points: " + np.where(is_ens, "ensemble of usable candidates", "only usable candidate"),
            np.where(
                is_ens,
                f"ensemble: lowest backtest {metric} (singles must win by {settings.selection.switch_margin:.0%})"
                if settings.selection.method == "best"
                else "ensemble by policy",
                f"lowest backtest {metric} in segment",
            ),
        ),
    )
    return pl.DataFrame(
        {
            "sku": sku.tolist(),
            "segment": prof.segment.tolist(),
            "model": published.tolist(),
            "reason": reason.tolist(),
            # the published forecast's nested backtest: points that did not choose or weight it
            f"backtest_{metric}": np.where(no_model, np.nan, pub_err[metric]),
            f"seasonal_naive_{metric}": err[sn_j] if sn_j is not None else np.full(n, np.nan),
            "history_months": prof.nobs,
            "nonzero_share": prof.share,
        }
    ).with_columns(pl.col(f"backtest_{metric}").fill_nan(None), pl.col(f"seasonal_naive_{metric}").fill_nan(None))


def _metrics(
    geo: _Backtest, prof: _Profile, cands: _Candidates, choice: _Choice, bands: _Bands, seconds: dict[str, float]
) -> dict[str, Any]:
    sn_j = _naive_index(cands)
    n = choice.chosen.size
    metrics = _summary(choice.bt, cands.bt[sn_j] if sn_j is not None else None, geo.act, prof.scale, prof.segment == REGULAR)
    metrics.update(
        {
            "coverage_p10_p90": bands.coverage,
            "skus": n,
            "intermittent_skus": int(prof.intermittent.sum()),
            "ensemble_share": float(choice.is_ensemble.mean()) if n else float("nan"),
            "backtest_origins": [str(d) for d in _index_to_date(geo.origins).to_list()],
            **{f"seconds_{k}": round(v, 3) for k, v in seconds.items()},
        }
    )
    return metrics


def _candidates_frame(sku: np.ndarray, label: np.ndarray, final: np.ndarray, geo: _Backtest) -> pl.DataFrame:
    jj, ii, hh = np.nonzero(np.isfinite(final))
    return pl.DataFrame(
        {
            "sku": sku[ii].tolist(),
            "model": label[jj].tolist(),
            "month": _index_to_date(geo.c + hh) if ii.size else pl.Series([], dtype=pl.Date),
            "forecast": final[jj, ii, hh],
        },
        schema={"sku": pl.String, "model": pl.String, "month": pl.Date, "forecast": pl.Float64},
    )
