"""Statistical forecast of the demand review: one baseline per SKU, with honest uncertainty.

The forecasting idea, in four parts:

1. **Several simple models beat one clever one.** No single method wins on every SKU, and
   choosing per SKU from a short backtest is noisy: the best model on the last year is often
   not the best on the next. A *median* of diverse candidates (seasonal naive, exponential
   smoothing, Theta, complex exponential smoothing and a global regression) is robust: one
   candidate's bad extrapolation (a runaway trend, a mis-detected season) is simply outvoted.
   That ensemble is itself scored in the backtest, so a SKU only leaves it when a single
   candidate was clearly better (``selection.method: best``) - or never
   (``selection.method: ensemble``).
2. **A global model learns what one SKU cannot.** A single linear regression fitted on every
   SKU's level-normalised log history sees hundreds of seasonal cycles, price changes and
   promotions at once, so it can estimate a price elasticity or a promotion lift that a
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

Everything here is a plain function on polars frames (no I/O, no orchestration). darts is the
modelling layer (its statsforecast-backed local models, its regression models for the global
model); numpy holds the SKU x model x origin x step arrays in between, which keeps the
selection, ensembling and calibration vectorised. Local models are fitted per SKU in worker
processes. The backtest is honest but cheap: each local model is refitted once, at the earliest
origin, with the structure its full-history fit selected (ETS components, CES season type), and
that fit re-filters the later origins' histories with its parameters held (darts'
transferable ``predict(series=...)``). No estimated parameter sees the months it is scored on
(only the choice of structure did), and the automatic model search runs once per SKU, not once
per origin.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import multiprocessing as _mp
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

__all__ = [
    "CandidateSpec",
    "ForecastResult",
    "ForecastSettings",
    "forecast_demand",
    "load_forecast_settings",
]

ENSEMBLE = "ensemble"
FALLBACK = "fallback:recent_mean"
REGULAR, INTERMITTENT = "regular", "intermittent"

# darts local models whose fit/predict we drive per series. Imported lazily (darts is slow to
# import and workers may be forked from a parent that already has it).
_LOCAL_MODELS = ("NaiveSeasonal", "AutoETS", "AutoTheta", "AutoCES", "Croston", "StatsForecastModel")
_GLOBAL_MODELS = ("LinearRegressionModel", "SKLearnModel")


# ---------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class CandidateSpec:
    """One forecasting method the backtest may choose.

    ``model`` is a darts model class name; ``params`` go to its constructor. ``segment`` says
    which SKUs may *publish* this candidate (regular or intermittent); every candidate is still
    backtested on every SKU with enough history so the error table is complete.
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    min_history: int = 12
    segment: str = REGULAR
    is_global: bool = False
    # global models only: which covariates to build and how the target is transformed
    features: dict[str, Any] = field(default_factory=dict)
    estimator: dict[str, Any] | None = None


@dataclass(frozen=True)
class ForecastSettings:
    horizon: int = 24
    candidates: tuple[CandidateSpec, ...] = ()
    backtest_origins: int = 4
    backtest_spacing: int = 3
    backtest_max_step: int = 12
    backtest_refit: str = "origin"  # origin | none | all (see _local_chunk)
    # fit every candidate on every SKU (complete error table) or only on its segment's SKUs
    score_all_segments: bool = True
    season_length: int = 12
    # selection: "ensemble" (always publish the ensemble) or "best" (lowest backtest error
    # among the segment's candidates and the ensemble; a single candidate must beat the
    # ensemble by `switch_margin`, relative, to replace it)
    selection_method: str = "best"
    selection_metric: str = "mase"
    switch_margin: float = 0.25
    ensemble_members: tuple[str, ...] = ()
    ensemble_combine: str = "median"  # median | mean | trimmed_mean
    # segments
    intermittent_max_nonzero_share: float = 0.5
    # quantiles
    quantile_low: float = 0.1
    quantile_high: float = 0.9
    quantile_min_points: int = 20
    quantile_default_exponent: float = 0.5
    # execution
    n_jobs: int = 2
    start_method: str = "auto"
    chunks_per_job: int = 4
    random_state: int = 0

    def candidate_names(self) -> list[str]:
        return [c.name for c in self.candidates]


def _candidate_from_dict(name: str, d: dict[str, Any]) -> CandidateSpec:
    d = dict(d)
    return CandidateSpec(
        name=name,
        model=str(d.pop("model")),
        params=dict(d.pop("params", {}) or {}),
        min_history=int(d.pop("min_history", 12)),
        segment=str(d.pop("segment", REGULAR)),
        is_global=bool(d.pop("global", False)),
        features=dict(d.pop("features", {}) or {}),
        estimator=d.pop("estimator", None),
    )


def _settings_from_dict(cfg: dict[str, Any]) -> ForecastSettings:
    bt = cfg.get("backtest", {}) or {}
    sel = cfg.get("selection", {}) or {}
    ens = sel.get("ensemble", {}) or {}
    seg = cfg.get("segments", {}) or {}
    q = cfg.get("quantiles", {}) or {}
    ex = cfg.get("execution", {}) or {}
    cands = tuple(_candidate_from_dict(k, v) for k, v in (cfg.get("candidates", {}) or {}).items())
    if not cands:
        raise ValueError("forecast settings: at least one candidate is required")
    names = [c.name for c in cands]
    members = tuple(ens.get("members") or [c.name for c in cands if c.segment == REGULAR])
    unknown = set(members) - set(names)
    if unknown:
        raise ValueError(f"forecast settings: ensemble members {sorted(unknown)} are not candidates")
    for c in cands:
        if c.model not in _LOCAL_MODELS + _GLOBAL_MODELS:
            raise ValueError(f"forecast settings: candidate {c.name}: unsupported model {c.model!r}")
        if c.segment not in (REGULAR, INTERMITTENT):
            raise ValueError(f"forecast settings: candidate {c.name}: segment must be regular or intermittent")
    s = ForecastSettings(
        horizon=int(cfg.get("horizon", 24)),
        candidates=cands,
        backtest_origins=int(bt.get("origins", 4)),
        backtest_spacing=int(bt.get("spacing", 3)),
        backtest_max_step=int(bt.get("max_step", 12)),
        backtest_refit=_refit_mode(bt.get("refit", "origin")),
        score_all_segments=bool(bt.get("all_segments", True)),
        season_length=int(cfg.get("season_length", 12)),
        selection_method=str(sel.get("method", "best")),
        selection_metric=str(sel.get("metric", "mase")),
        switch_margin=float(sel.get("switch_margin", 0.25)),
        ensemble_members=members,
        ensemble_combine=str(ens.get("combine", "median")),
        intermittent_max_nonzero_share=float(seg.get("intermittent_max_nonzero_share", 0.5)),
        quantile_low=float(q.get("low", 0.1)),
        quantile_high=float(q.get("high", 0.9)),
        quantile_min_points=int(q.get("min_points", 20)),
        quantile_default_exponent=float(q.get("default_exponent", 0.5)),
        n_jobs=int(ex.get("n_jobs", 2)),
        start_method=str(ex.get("start_method", "auto")),
        chunks_per_job=int(ex.get("chunks_per_job", 4)),
        random_state=int(ex.get("random_state", 0)),
    )
    if s.selection_method not in ("best", "ensemble"):
        raise ValueError("forecast settings: selection.method must be 'best' or 'ensemble'")
    if s.selection_metric not in ("mase", "wape", "smape"):
        raise ValueError("forecast settings: selection.metric must be mase, wape or smape")
    if s.ensemble_combine not in ("median", "mean", "trimmed_mean"):
        raise ValueError("forecast settings: ensemble.combine must be median, mean or trimmed_mean")
    if not 0 < s.quantile_low < 0.5 < s.quantile_high < 1:
        raise ValueError("forecast settings: quantiles must satisfy 0 < low < 0.5 < high < 1")
    if s.horizon < 1 or s.backtest_origins < 1 or s.backtest_spacing < 1 or s.backtest_max_step < 1:
        raise ValueError("forecast settings: horizon and backtest sizes must be positive")
    return s


def _refit_mode(v: Any) -> str:
    if v is True:
        return "all"
    if v is False or v is None:
        return "none"
    v = str(v)
    if v not in ("origin", "none", "all"):
        raise ValueError("forecast settings: backtest.refit must be origin, none or all")
    return v


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Profile overrides: nested dicts merge, a null removes the key (e.g. a candidate)."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_forecast_settings(path: str | Path, profile: str | None = None) -> ForecastSettings:
    """Read `models/forecast.yaml`. A `profiles:` section holds named overrides (deep-merged,
    null removes an entry) so a benchmark can run the same code with a configuration tuned for
    its data without a second file drifting from the first."""
    cfg = yaml.safe_load(Path(path).read_text()) or {}
    profiles = cfg.pop("profiles", {}) or {}
    if profile is not None:
        if profile not in profiles:
            raise ValueError(f"forecast settings: no profile {profile!r} in {path}")
        cfg = _deep_merge(cfg, profiles[profile])
    return _settings_from_dict(cfg)


# ---------------------------------------------------------------------------------------------
# result


@dataclass
class ForecastResult:
    """Everything the demand review needs from the statistical forecast.

    * ``forecast``: sku, month, model, p10, p50, p90 for every SKU and horizon month.
    * ``backtest``: long table, one row per sku, model, origin, horizon_step with the actual
      and that model's forecast; ``model`` includes every candidate and ``ensemble``.
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


# ---------------------------------------------------------------------------------------------
# months


def _month_index(d: _dt.date) -> int:
    return d.year * 12 + d.month - 1


def _index_to_date(idx: np.ndarray) -> pl.Series:
    idx = np.asarray(idx, dtype=np.int64)
    return pl.select(
        pl.date(pl.lit(pl.Series(idx // 12)), pl.lit(pl.Series(idx % 12 + 1)), 1)
    ).to_series()


# ---------------------------------------------------------------------------------------------
# local models (run in workers)


def _quiet() -> None:
    """Silence model chatter in a worker process (it exits after the forecast)."""
    warnings.filterwarnings("ignore")
    for name in ("darts", "statsforecast", "numba"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextmanager
def _silenced():
    """The same in the caller's process, restored afterwards."""
    loggers = [logging.getLogger(name) for name in ("darts", "statsforecast")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)


def _make_local(spec: CandidateSpec, positive: bool = False):
    import darts.models as dm

    params = dict(spec.params)
    # `positive_model` (AutoETS): the model string for strictly positive series. Errors
    # proportional to the level (multiplicative error) are the natural ETS family for positive
    # data; only series with zeros need the additive-error models, and fitting one family
    # instead of both halves the search.
    pos = params.pop("positive_model", None)
    if positive and pos:
        params["model"] = pos
    if spec.model == "StatsForecastModel":
        return dm.StatsForecastModel(model=params.pop("model"), model_kwargs=params,
                                     min_train_length=spec.min_history)
    cls = getattr(dm, spec.model)
    if spec.model == "NaiveSeasonal":
        return cls(**params)
    return cls(**params, min_train_length=spec.min_history)


# statsforecast's CES `forward` keeps the fitted initial states, which do not belong to a
# shorter series: its re-filtered forecasts explode. CES is cheap with a pinned season type, so
# it is refitted at every origin instead.
_FORWARD_UNSAFE = ("AutoCES",)


def _sane(v: np.ndarray, y: np.ndarray) -> bool:
    """A forecast an optimiser ran away with (non-finite, or ten times anything ever sold)
    is a failed fit, not a candidate."""
    return bool(np.all(np.isfinite(v)) and np.max(np.abs(v), initial=0.0) <= 10 * np.max(np.abs(y), initial=0.0) + 10)


def _pinned(spec: CandidateSpec, fitted) -> Any:
    """A fresh darts model with the *structure* the full-history fit selected (ETS components,
    CES season type, Theta variant) but parameters still to estimate. Refitting that at a
    backtest origin gives honest parameters for a fraction of the automatic search's cost."""
    import darts.models as dm

    params = {k: v for k, v in spec.params.items() if k != "positive_model"}
    try:
        sel = fitted.model.model_
        if spec.model == "AutoETS":
            comp = str(sel["components"])
            params.update(model=comp[:3], damped=comp[3:4] not in ("", "N"))
        elif spec.model == "AutoCES":
            params.update(model=str(sel["seasontype"]))
        elif spec.model == "AutoTheta":
            params.update(model=str(sel["modeltype"]))
    except (AttributeError, KeyError, TypeError):
        pass
    return getattr(dm, spec.model)(**params, min_train_length=spec.min_history) \
        if spec.model != "StatsForecastModel" else _make_local(spec)


def _local_chunk(task: tuple, quiet: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fit every local candidate on a chunk of SKUs; returns (final, backtest) arrays.

    Backtest modes (``backtest.refit``):

    * ``origin`` - refit once, at the earliest origin, with the structure the full-history
      fit selected, then re-filter that model on the later origins' histories (darts'
      transferable ``predict(series=...)``). No parameter has seen the data it is scored on.
    * ``none`` - re-filter the full-history model on every origin's history: cheapest, but the
      parameters have seen the backtest window, so errors (and intervals) come out optimistic.
    * ``all`` - a full automatic refit at every origin: honest and slowest.
    """
    specs, ys, lens_at_origin, run, H, S, mode = task
    if quiet:
        _quiet()
    from darts import TimeSeries

    n_sku, B = len(ys), lens_at_origin.shape[1]
    final = np.full((len(specs), n_sku, H), np.nan)
    bt = np.full((len(specs), n_sku, B, S), np.nan)
    for j, spec in enumerate(specs):
        for i, y in enumerate(ys):
            n = y.shape[0]
            if n < spec.min_history or not run[j, i]:
                continue
            try:
                model = _make_local(spec, bool(np.all(y > 0))).fit(TimeSeries.from_values(y))
                v = model.predict(H).values(copy=False)[:, 0]
            except Exception:  # noqa: BLE001, S112 - statsforecast raises bare Exception; a model
                continue  # that cannot fit this series is simply not a candidate for it
            if not _sane(v, y):
                continue
            final[j, i] = v
            at = [b for b in range(B) if lens_at_origin[i, b] >= spec.min_history]
            origin_model = None
            for b in at:
                L = int(lens_at_origin[i, b])
                steps = min(S, n - L)
                try:
                    ts = TimeSeries.from_values(y[:L])
                    if mode == "all":
                        f = _make_local(spec, bool(np.all(y[:L] > 0))).fit(ts).predict(steps)
                    elif spec.model in _FORWARD_UNSAFE:
                        f = _pinned(spec, model).fit(ts).predict(steps)
                    elif mode == "none":
                        f = model.predict(steps, series=ts)
                    elif origin_model is None:  # earliest origin the model could be fitted at
                        origin_model = _pinned(spec, model).fit(ts)
                        f = origin_model.predict(steps)
                    else:
                        f = origin_model.predict(steps, series=ts)
                    v = f.values(copy=False)[:, 0]
                    if _sane(v, y[:L]):
                        bt[j, i, b, :steps] = v
                except Exception:  # noqa: BLE001, S112 - no backtest at this origin, same reason
                    continue
    return final, bt


def _seasonal_naive(ys: list[np.ndarray], lens: np.ndarray, K: int, min_history: int, H: int,
                    S: int) -> tuple[np.ndarray, np.ndarray]:
    """darts ``NaiveSeasonal(K)`` (repeat the last K values) for every SKU and origin at once.

    The benchmark everybody must beat costs nothing to compute, so it should not pay darts'
    per-series model overhead either; `test_seasonal_naive_matches_darts` pins the equivalence."""
    n, B = len(ys), lens.shape[1]
    final = np.full((n, H), np.nan)
    bt = np.full((n, B, S), np.nan)
    need = max(K, min_history)
    for i, y in enumerate(ys):
        L = y.shape[0]
        if L >= need:
            final[i] = y[L - K + np.arange(H) % K]
        for b in range(B):
            Lb = int(lens[i, b])
            if Lb >= need:
                steps = min(S, L - Lb)
                bt[i, b, :steps] = y[Lb - K + np.arange(steps) % K]
    return final, bt


def _local_tasks(specs: list[CandidateSpec], ys: list[np.ndarray], lens: np.ndarray, H: int, S: int,
                 settings: ForecastSettings) -> tuple[list[np.ndarray], list[tuple]]:
    n = len(ys)
    n_jobs = max(1, int(settings.n_jobs))
    n_chunks = 1 if (n_jobs == 1 or n < 8) else min(n, n_jobs * max(1, settings.chunks_per_job))
    # Interleaved chunks balance long and short series across workers; results go back to the
    # SKU's position, so the output does not depend on scheduling.
    parts = [np.arange(k, n, n_chunks) for k in range(n_chunks)]
    tasks = [(specs, [ys[i] for i in p], lens[p], H, S, settings.backtest_refit) for p in parts]
    return parts, tasks


def _executor(settings: ForecastSettings) -> ProcessPoolExecutor:
    """Worker pool for the local models. `auto` forks on Linux: workers inherit the imported
    darts/statsforecast instead of re-importing them (seconds per worker), and they only run
    numpy/statsforecast code, never polars. Elsewhere, or when a host process makes fork
    unsafe, `forkserver`/`spawn` trade that start-up time for isolation."""
    method = settings.start_method
    if method == "auto":
        method = "fork" if sys.platform.startswith("linux") else "spawn"
    if method not in _mp.get_all_start_methods():
        method = None
    return ProcessPoolExecutor(max_workers=max(1, int(settings.n_jobs)), mp_context=_mp.get_context(method))


# ---------------------------------------------------------------------------------------------
# global model (parent process)


@dataclass
class _Panel:
    """History as arrays: one row per SKU, aligned on absolute month index."""

    skus: list[str]
    start: np.ndarray  # absolute month index of each SKU's first month
    ys: list[np.ndarray]
    price: np.ndarray | None  # n_sku x (T + H) log price relative to the last season's; None if no prices
    promo: np.ndarray | None  # n_sku x (T + H) promotion share; None if never promoted
    t0: int  # absolute index of column 0 in price/promo
    indicators: np.ndarray | None  # (T + H) x k, standardised


def _level(y: np.ndarray, L: int, season: int) -> float:
    """Recent level used to normalise a series for the global model: mean of the last season
    before the origin, falling back to the whole past when that is zero."""
    w = y[max(0, L - season):L]
    lv = float(w.mean()) if w.size else 0.0
    if lv <= 0:
        lv = float(y[:L].mean()) if L > 0 else 0.0
    return lv if lv > 0 else 1.0


def _global_covariates(panel: _Panel, i: int, spec: CandidateSpec, end: int):
    """Future covariates of SKU i from its first month to `end` (exclusive): calendar
    (sin/cos of month), log relative price, promotion share and its lag (post-promotion dip),
    standardised indicators."""
    feats = spec.features
    a0 = int(panel.start[i])
    idx = np.arange(a0 - 1, end)  # one month earlier so a lag -1 covariate exists
    cols = []
    if feats.get("calendar", True):
        ang = 2 * np.pi * (idx % 12) / 12
        cols += [np.sin(ang), np.cos(ang)]
    k = idx - panel.t0
    width = (panel.price if panel.price is not None else panel.promo)
    width = width.shape[1] if width is not None else (panel.indicators.shape[0] if panel.indicators is not None else 1)
    kk = np.clip(k, 0, width - 1)
    if feats.get("price", True) and panel.price is not None:
        cols.append(np.where(k >= 0, panel.price[i, kk], 0.0))
    if feats.get("promotion", True) and panel.promo is not None:
        cols.append(np.where(k >= 0, panel.promo[i, kk], 0.0))
    if feats.get("indicators", True) and panel.indicators is not None:
        for c in range(panel.indicators.shape[1]):
            cols.append(np.where(k >= 0, panel.indicators[kk, c], 0.0))
    return idx, np.column_stack(cols) if cols else None


def _make_global(spec: CandidateSpec, has_cov: bool, seed: int):
    import darts.models as dm

    params = dict(spec.params)
    lags_fc = params.pop("lags_future_covariates", [-1, 0]) if has_cov else None
    if spec.model == "LinearRegressionModel":
        return dm.LinearRegressionModel(lags_future_covariates=lags_fc, random_state=seed, **params)
    est = dict(spec.estimator or {"class": "HistGradientBoostingRegressor"})
    cls_name = est.pop("class")
    import sklearn.ensemble as ske
    import sklearn.linear_model as skl

    cls = getattr(ske, cls_name, None) or getattr(skl, cls_name)
    if "random_state" in cls().get_params():
        est.setdefault("random_state", seed)
    return dm.SKLearnModel(model=cls(**est), lags_future_covariates=lags_fc, **params)


def _run_global(spec: CandidateSpec, panel: _Panel, c: int, origins: np.ndarray, H: int, S: int,
                season: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit one regression across all SKUs on level-normalised log demand.

    Normalising by each SKU's recent level puts a 5-unit and a 5,000-unit SKU on one scale, and
    the log turns seasonality, trend, price elasticity and promotion lift into additive
    effects a linear model can share across SKUs. The backtest model is trained only on data
    before the first origin (no leakage; a single fit serves all origins)."""
    from darts import TimeSeries

    n, B = len(panel.ys), origins.shape[0]
    final = np.full((n, H), np.nan)
    bt = np.full((n, B, S), np.nan)
    lags = int(spec.params.get("lags", 12))
    ocl = int(spec.params.get("output_chunk_length", 1))
    delta = float(spec.features.get("log_offset", 1.0))
    min_hist = max(spec.min_history, lags + 1)

    def fwd(y, lv):
        return np.log(np.maximum(y, 0.0) / lv + delta)

    def inv(z, lv):
        return np.maximum((np.exp(z) - delta) * lv, 0.0)

    covs = [_global_covariates(panel, i, spec, c + H) for i in range(n)]
    has_cov = covs[0][1] is not None if n else False
    cov_ts = [TimeSeries.from_times_and_values(_range_index(idx), v) if v is not None else None
              for idx, v in covs]

    def target(i, L):
        y = panel.ys[i]
        lv = _level(y, L, season)
        a0 = int(panel.start[i])
        return TimeSeries.from_times_and_values(_range_index(np.arange(a0, a0 + L)), fwd(y[:L], lv)), lv

    # ---- backtest model: trained on data before the first origin -------------------------
    first = int(origins.min()) if B else c
    train_idx = [i for i in range(n) if first - int(panel.start[i]) >= min_hist + ocl]
    if B and len(train_idx) >= 2:
        model = _make_global(spec, has_cov, seed)
        tr = [target(i, first - int(panel.start[i]))[0] for i in train_idx]
        model.fit(tr, future_covariates=[cov_ts[i] for i in train_idx] if has_cov else None)
        for b in range(B):
            o = int(origins[b])
            steps = min(S, c - o)
            ids = [i for i in range(n) if o - int(panel.start[i]) >= min_hist]
            if not ids or steps < 1:
                continue
            tl = [target(i, o - int(panel.start[i])) for i in ids]
            pred = model.predict(steps, series=[t for t, _ in tl],
                                 future_covariates=[cov_ts[i] for i in ids] if has_cov else None)
            for i, (t, lv), p in zip(ids, tl, pred):
                bt[i, b, :steps] = inv(p.values(copy=False)[:, 0], lv)

    # ---- final model: all history -----------------------------------------------------------
    train_idx = [i for i in range(n) if panel.ys[i].shape[0] >= min_hist + ocl]
    if len(train_idx) >= 2:
        model = _make_global(spec, has_cov, seed)
        tr = [target(i, panel.ys[i].shape[0])[0] for i in train_idx]
        model.fit(tr, future_covariates=[cov_ts[i] for i in train_idx] if has_cov else None)
        ids = [i for i in range(n) if panel.ys[i].shape[0] >= min_hist]
        tl = [target(i, panel.ys[i].shape[0]) for i in ids]
        pred = model.predict(H, series=[t for t, _ in tl],
                             future_covariates=[cov_ts[i] for i in ids] if has_cov else None)
        for i, (t, lv), p in zip(ids, tl, pred):
            final[i] = inv(p.values(copy=False)[:, 0], lv)
    return final, bt


def _range_index(idx: np.ndarray):
    import pandas as pd

    return pd.RangeIndex(int(idx[0]), int(idx[-1]) + 1)


# ---------------------------------------------------------------------------------------------
# preparation


def _prepare(history: pl.DataFrame, c: int, H: int, future_prices: pl.DataFrame | None,
             indicators: pl.DataFrame | None) -> _Panel:
    """Turn the long history into per-SKU arrays. Missing months inside a SKU's span (the
    caller zero-fills, this is a safety net) count as zero sales, as the contract says."""
    h = (
        history.select(
            pl.col("sku").cast(pl.String),
            (pl.col("month").dt.year().cast(pl.Int64) * 12 + pl.col("month").dt.month().cast(pl.Int64) - 1).alias("m"),
            pl.col("quantity").cast(pl.Float64).fill_null(0.0).fill_nan(0.0).clip(lower_bound=0.0),
            (pl.col("net_price").cast(pl.Float64) if "net_price" in history.columns else pl.lit(None, pl.Float64)).alias("net_price"),
            (pl.col("promotion").cast(pl.Float64) if "promotion" in history.columns else pl.lit(0.0)).fill_null(0.0).alias("promotion"),
        )
        .filter(pl.col("m") < c)
        .sort("sku", "m")
    )
    skus_s = h.get_column("sku").unique(maintain_order=True)
    skus = skus_s.to_list()
    n = len(skus)
    code = h.get_column("sku").cast(pl.Enum(skus_s)).to_physical().to_numpy().astype(np.int64)
    m = h.get_column("m").to_numpy()
    start = np.full(n, c, dtype=np.int64)
    np.minimum.at(start, code, m)
    t0 = int(start.min()) if n else c
    T = c - t0
    Y = np.zeros((n, T))
    Y[code, m - t0] = h.get_column("quantity").to_numpy()
    ys = [Y[i, start[i] - t0:].copy() for i in range(n)]

    # prices: log price relative to the last known price, carried forward/back over gaps and
    # held flat into the horizon unless future prices are given
    P = np.full((n, T + H), np.nan)
    P[code, m - t0] = h.get_column("net_price").fill_nan(None).to_numpy()
    P[~(P > 0)] = np.nan
    promo = np.zeros((n, T + H))
    promo[code, m - t0] = np.clip(h.get_column("promotion").to_numpy(), 0.0, 1.0)
    price = None
    if np.isfinite(P).any():
        # Without a price plan the future price is the last *regular* price: a promotion in the
        # last month must not be extrapolated as a permanent discount.
        regular = np.where(promo[:, :T] < 0.5, P[:, :T], np.nan)
        flat = _ffill(regular)[:, -1] if T else np.full(n, np.nan)
        flat = np.where(np.isfinite(flat), flat, _ffill(P[:, :T])[:, -1] if T else np.nan)
        P[:, T:] = flat[:, None]
        if future_prices is not None and future_prices.height:
            fp = future_prices.select(
                pl.col("sku").cast(pl.String),
                (pl.col("month").dt.year().cast(pl.Int64) * 12 + pl.col("month").dt.month().cast(pl.Int64) - 1).alias("m"),
                pl.col("net_price").cast(pl.Float64),
            ).filter(pl.col("sku").is_in(skus_s.implode()) & (pl.col("m") >= c) & (pl.col("m") < c + H)
                     & (pl.col("net_price") > 0))
            fcode = fp.get_column("sku").cast(pl.Enum(skus_s)).to_physical().to_numpy().astype(np.int64)
            P[fcode, fp.get_column("m").to_numpy() - t0] = fp.get_column("net_price").to_numpy()
        Pf = _bfill(_ffill(P))
        # Relative to the geometric mean of the last season's prices: the same window the
        # global model's level normalisation uses, so price and level speak of the same base.
        with np.errstate(invalid="ignore", divide="ignore"):
            lp = np.log(Pf)
            ref = np.nanmean(lp[:, max(0, T - 12):T], axis=1) if T else np.zeros(n)
            price = np.nan_to_num(lp - ref[:, None], nan=0.0, posinf=0.0, neginf=0.0)
        if not np.any(price != 0):
            price = None
    if not promo.any():
        promo = None

    ind = None
    if indicators is not None and indicators.height:
        iv = indicators.select(
            (pl.col("month").dt.year().cast(pl.Int64) * 12 + pl.col("month").dt.month().cast(pl.Int64) - 1).alias("m"),
            pl.col("indicator").cast(pl.String),
            pl.col("value").cast(pl.Float64),
        )
        names = sorted(iv.get_column("indicator").unique().to_list())
        ind = np.full((T + H, len(names)), np.nan)
        for k, nm in enumerate(names):  # indicators are few: a loop over names only
            sub = iv.filter(pl.col("indicator") == nm)
            mm = sub.get_column("m").to_numpy() - t0
            ok = (mm >= 0) & (mm < T + H)
            ind[mm[ok], k] = sub.get_column("value").to_numpy()[ok]
        ind = _bfill(_ffill(ind.T)).T
        hist = ind[:T]
        mu = np.nanmean(hist, axis=0) if T else np.zeros(len(names))
        sd = np.nanstd(hist, axis=0) if T else np.ones(len(names))
        ind = np.nan_to_num((ind - mu) / np.where(sd > 0, sd, 1.0))
    return _Panel(skus=skus, start=start, ys=ys, price=price, promo=promo, t0=t0, indicators=ind)


def _ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaN along axis 1."""
    if a.size == 0:
        return a
    mask = np.isfinite(a)
    idx = np.where(mask, np.arange(a.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    out = a[np.arange(a.shape[0])[:, None], idx]
    out[~np.maximum.accumulate(mask, axis=1)] = np.nan
    return out


def _bfill(a: np.ndarray) -> np.ndarray:
    return _ffill(a[:, ::-1])[:, ::-1]


def _mase_scale(y: np.ndarray, m: int) -> float:
    """In-sample MAE of the seasonal naive forecast: the yardstick of MASE, and the unit in
    which backtest errors are pooled across SKUs of very different sizes."""
    if y.shape[0] > m:
        s = float(np.mean(np.abs(y[m:] - y[:-m])))
    elif y.shape[0] > 1:
        s = float(np.mean(np.abs(np.diff(y))))
    else:
        s = float(np.abs(y).mean()) if y.size else 0.0
    if s <= 0:  # constant series: fall back to a share of the level so intervals are not empty
        s = 0.1 * float(np.abs(y).mean()) if y.size else 0.0
    return s


# ---------------------------------------------------------------------------------------------
# combination, scoring, selection, calibration


def _combine(stack: np.ndarray, how: str) -> np.ndarray:
    """Combine member forecasts along axis 0, ignoring members that are missing (NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "mean":
            return np.nanmean(stack, axis=0)
        if how == "trimmed_mean":
            srt = np.sort(stack, axis=0)  # NaN sort last
            cnt = np.sum(np.isfinite(stack), axis=0)
            k = np.where(cnt >= 4, 1, 0)
            idx = np.arange(stack.shape[0]).reshape((-1,) + (1,) * (stack.ndim - 1))
            keep = (idx >= k) & (idx < cnt - k)
            return np.nanmean(np.where(keep, srt, np.nan), axis=0)
        return np.nanmedian(stack, axis=0)


def _errors(fc: np.ndarray, act: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per-SKU error measures over the backtest points where both exist. fc/act: (..., n_sku, B, S)."""
    ok = np.isfinite(fc) & np.isfinite(act)
    e = np.where(ok, fc - act, 0.0)
    a = np.where(ok, act, 0.0)
    cnt = ok.sum(axis=(-1, -2))
    sae = np.abs(e).sum(axis=(-1, -2))
    sa = np.abs(a).sum(axis=(-1, -2))
    den = np.abs(np.where(ok, fc, 0.0)) + np.abs(a)
    sm = np.where(ok & (den > 0), 200 * np.abs(e) / np.where(den > 0, den, 1), 0.0).sum(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "n": cnt,
            "wape": np.where((cnt > 0) & (sa > 0), sae / sa, np.where(cnt > 0, np.where(sae > 0, np.inf, 0.0), np.nan)),
            "mase": np.where((cnt > 0) & (scale > 0), sae / np.maximum(cnt, 1) / np.where(scale > 0, scale, 1),
                             np.where(cnt > 0, np.where(sae > 0, np.inf, 0.0), np.nan)),
            "smape": np.where(cnt > 0, sm / np.maximum(cnt, 1), np.nan),
            "bias": np.where((cnt > 0) & (sa > 0), e.sum(axis=(-1, -2)) / np.where(sa > 0, sa, 1), np.nan),
        }
    return out


def _fit_width(r: np.ndarray, step: np.ndarray, q: float, settings: ForecastSettings, H: int) -> np.ndarray:
    """Quantile q of normalised errors as a function of horizon step, q(h) = a * h**b.

    Per-step empirical quantiles (with the conformal finite-sample correction) where a step
    has enough points, then a weighted log-log fit so the curve is smooth, monotone and
    extrapolates to steps beyond the backtest. Returns q(1..H)."""
    hs = np.arange(1, H + 1, dtype=float)
    if r.size == 0:
        return np.zeros(H)
    sign = 1.0 if q > 0.5 else -1.0
    pts, wts = [], []
    for s in np.unique(step):
        rs = r[step == s]
        if rs.size < settings.quantile_min_points:
            continue
        lvl = q if q > 0.5 else 1 - q
        lvl = min(1.0, math.ceil((rs.size + 1) * lvl) / rs.size)
        v = np.quantile(sign * rs, lvl, method="higher")
        pts.append((s, max(v, 1e-9)))
        wts.append(rs.size)
    b = settings.quantile_default_exponent
    if len(pts) >= 3:
        x = np.log([p[0] for p in pts])
        yv = np.log([p[1] for p in pts])
        w = np.asarray(wts, dtype=float)
        xm, ym = np.average(x, weights=w), np.average(yv, weights=w)
        var = np.average((x - xm) ** 2, weights=w)
        b = float(np.clip(np.average((x - xm) * (yv - ym), weights=w) / var if var > 0 else b, 0.0, 1.0))
        a = float(np.exp(ym - b * xm))
    else:
        # too few points per step: pool every step, assuming errors grow like h**b
        lvl = q if q > 0.5 else 1 - q
        z = sign * r / step.astype(float) ** b
        lvl = min(1.0, math.ceil((z.size + 1) * lvl) / z.size)
        a = max(float(np.quantile(z, lvl, method="higher")), 0.0)
    return sign * np.maximum(a * hs ** b, 0.0)


# ---------------------------------------------------------------------------------------------
# main entry point


def forecast_demand(
    history: pl.DataFrame,
    cycle_month: _dt.date,
    settings: ForecastSettings,
    future_prices: pl.DataFrame | None = None,
    indicators: pl.DataFrame | None = None,
) -> ForecastResult:
    """Statistical forecast with backtest-based choice and calibrated p10/p50/p90 per SKU.

    `history` holds sku, month (Date, first of month), quantity, net_price, promotion, one row
    per SKU and month, zero-filled from each SKU's first sale to the month before
    `cycle_month`. The forecast covers `settings.horizon` months from `cycle_month`.
    """
    import time

    t_start = time.perf_counter()
    H = int(settings.horizon)
    m = int(settings.season_length)
    c = _month_index(cycle_month)
    S = int(min(settings.backtest_max_step, H))
    panel = _prepare(history, c, H, future_prices, indicators)
    n = len(panel.skus)
    names = settings.candidate_names()
    specs = list(settings.candidates)

    # ---- backtest geometry: origins every `spacing` months before the cycle --------------
    origins = np.array([c - settings.backtest_spacing * k for k in range(settings.backtest_origins, 0, -1)],
                       dtype=np.int64)
    B = origins.shape[0]
    lens = origins[None, :] - panel.start[:, None]  # points before each origin, per SKU
    act = np.full((n, B, S), np.nan)
    for b, o in enumerate(origins):  # origins are few: a loop over origins only
        steps = np.arange(S)
        cols = o + steps
        ok_t = cols < c
        for i in np.flatnonzero(lens[:, b] > 0):
            idx = cols[ok_t] - panel.start[i]
            act[i, b, : idx.size] = panel.ys[i][idx]

    # ---- segments ------------------------------------------------------------------------
    nobs = np.array([y.shape[0] for y in panel.ys], dtype=np.int64)
    nonzero = np.array([int(np.count_nonzero(y)) for y in panel.ys], dtype=np.int64)
    share = np.where(nobs > 0, nonzero / np.maximum(nobs, 1), 0.0)
    has_int = np.bool_(any(s.segment == INTERMITTENT for s in specs))
    # Intermittent: sales in fewer than the threshold share of months (all-zero included). A
    # young SKU that sold every month is short, not intermittent: it gets the candidates its
    # history allows, or the recent mean.
    intermittent = has_int & ((share < settings.intermittent_max_nonzero_share) | (nonzero == 0))
    segment = np.where(intermittent, INTERMITTENT, REGULAR)
    scale = np.array([_mase_scale(y, m) for y in panel.ys])

    # ---- fit every candidate ---------------------------------------------------------------
    # Local models go to worker processes first; the parent computes the vectorised baseline
    # and the global model meanwhile, then collects.
    t_fit = time.perf_counter()
    t_global = 0.0
    final = np.full((len(specs), n, H), np.nan)
    bt = np.full((len(specs), n, B, S), np.nan)
    run = np.array([(segment == s.segment) | settings.score_all_segments for s in specs]).reshape(len(specs), n)
    local_j = [j for j, s in enumerate(specs) if not s.is_global and s.model != "NaiveSeasonal"]
    parts, tasks = _local_tasks([specs[j] for j in local_j], panel.ys, lens, H, S, settings)
    tasks = [t[:3] + (run[local_j][:, p],) + t[3:] for p, t in zip(parts, tasks)]
    if local_j and len(tasks) > 1:
        import darts.models  # noqa: F401  (imported once here, inherited by forked workers)
    pool = _executor(settings) if local_j and len(tasks) > 1 else None
    try:
        pending = [pool.submit(_local_chunk, t) for t in tasks] if pool else []
        for j, s in enumerate(specs):
            if s.model == "NaiveSeasonal":
                final[j], bt[j] = _seasonal_naive(panel.ys, lens, int(s.params.get("K", m)), s.min_history, H, S)
            elif s.is_global:
                t_g = time.perf_counter()
                with _silenced():
                    final[j], bt[j] = _run_global(s, panel, c, origins, H, S, m, settings.random_state)
                t_global += time.perf_counter() - t_g
        if pool:
            results = [f.result() for f in pending]
        elif local_j and tasks:
            with _silenced():
                results = [_local_chunk(tasks[0], quiet=False)]
        else:
            results = []
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    for p, (f, b) in zip(parts, results):
        final[np.ix_(local_j, p)] = f
        bt[np.ix_(local_j, p)] = b
    final = np.where(run[:, :, None], final, np.nan)
    bt = np.where(run[:, :, None, None], bt, np.nan)
    t_models = time.perf_counter() - t_fit

    # a candidate is usable for a SKU when it produced a finite, non-absurd forecast
    final = np.where(np.isfinite(final), final, np.nan)
    usable = np.all(np.isfinite(final), axis=2) & (nobs[None, :] >= np.array([s.min_history for s in specs])[:, None])
    final = np.where(usable[:, :, None], np.maximum(final, 0.0), np.nan)
    bt = np.where(usable[:, :, None, None], np.maximum(bt, 0.0), np.nan)

    # ---- ensemble (a pseudo-candidate scored like the others) -----------------------------
    mem = np.array([nm in settings.ensemble_members for nm in names])
    ens_final = _combine(np.where(mem[:, None, None], final, np.nan), settings.ensemble_combine)
    ens_bt = _combine(np.where(mem[:, None, None, None], bt, np.nan), settings.ensemble_combine)
    all_names = names + [ENSEMBLE]
    F_all = np.concatenate([final, ens_final[None]], axis=0)
    BT_all = np.concatenate([bt, ens_bt[None]], axis=0)
    usable_all = np.concatenate([usable, np.all(np.isfinite(ens_final), axis=1)[None]], axis=0)

    err = _errors(BT_all, act[None], scale[None])

    # ---- selection -------------------------------------------------------------------------
    # Compare candidates on the backtest points they all have, so a model that skipped a hard
    # early origin is not favoured.
    seg_of = np.array([s.segment for s in specs] + [REGULAR])
    eligible = usable_all & ((seg_of[:, None] == segment[None, :]) | ((seg_of[:, None] == REGULAR) & ~has_int))
    eligible[-1] &= segment == REGULAR
    if settings.selection_method == "ensemble":
        eligible[:-1] &= ~((seg_of[:-1, None] == REGULAR) & (segment[None, :] == REGULAR))
    # a candidate without a single backtest point (history too short at every origin) may
    # still vote in the ensemble but cannot be chosen on evidence it does not have
    has_bt = np.any(np.isfinite(BT_all) & np.isfinite(act)[None], axis=(2, 3))
    judged = eligible & has_bt
    common = np.all(np.where(judged[:, :, None, None], np.isfinite(BT_all), True), axis=0) & np.isfinite(act)
    BT_common = np.where(common[None], BT_all, np.nan)
    score = _errors(BT_common, act[None], scale[None])[settings.selection_metric]
    score = np.where(judged & np.isfinite(score), score, np.inf)
    has_score = np.isfinite(score).any(axis=0)
    margin = np.ones(len(all_names))
    margin[:-1] = 1.0 - settings.switch_margin  # singles must beat the ensemble clearly
    eff = np.where(seg_of[:, None] == REGULAR, score / margin[:, None], score)
    eff[-1] = score[-1]
    chosen = np.argmin(eff, axis=0)
    # no backtest evidence (short history): publish the ensemble, else any usable candidate
    fallback_pref = np.where(eligible[-1], len(all_names) - 1, np.argmax(eligible, axis=0))
    chosen = np.where(has_score, chosen, fallback_pref)
    no_model = ~eligible[chosen, np.arange(n)].astype(bool)

    point = F_all[chosen, np.arange(n)]
    # a SKU no candidate can forecast (a handful of months of history): recent mean, flat
    for i in np.flatnonzero(no_model):
        y = panel.ys[i]
        point[i] = float(y[-3:].mean()) if y.size else 0.0
    point = np.nan_to_num(np.maximum(point, 0.0))
    bt_chosen = BT_all[chosen, np.arange(n)]
    bt_chosen[no_model] = np.nan

    # ---- calibrated quantiles ------------------------------------------------------------
    r = (act - bt_chosen) / np.where(scale > 0, scale, 1.0)[:, None, None]
    step_idx = np.broadcast_to(np.arange(1, S + 1)[None, None, :], r.shape)
    orig_idx = np.broadcast_to(np.arange(B)[None, :, None], r.shape)
    ok = np.isfinite(r)
    lo_w = np.zeros((n, H))
    hi_w = np.zeros((n, H))
    inside = np.zeros(0, dtype=bool)
    for seg in (REGULAR, INTERMITTENT):
        rows = segment == seg
        if not rows.any():
            continue
        mask = ok & rows[:, None, None]
        if mask.sum() < settings.quantile_min_points and seg == INTERMITTENT:
            mask = ok  # too few intermittent points to calibrate on their own: pool all
        rr, ss = r[mask], step_idx[mask]
        lo = _fit_width(rr, ss, settings.quantile_low, settings, H)
        hi = _fit_width(rr, ss, settings.quantile_high, settings, H)
        lo_w[rows], hi_w[rows] = lo, hi
        # leave-one-origin-out coverage on this segment's own points
        own = ok & rows[:, None, None]
        for b in range(B):
            test = own & (orig_idx == b)
            if not test.any():
                continue
            train = mask & (orig_idx != b)
            if train.sum() >= settings.quantile_min_points:
                lo_b = _fit_width(r[train], step_idx[train], settings.quantile_low, settings, H)
                hi_b = _fit_width(r[train], step_idx[train], settings.quantile_high, settings, H)
            else:
                lo_b, hi_b = lo, hi
            ii = np.nonzero(test)
            fc = bt_chosen[test]
            s_ = step_idx[test] - 1
            sc = scale[ii[0]]
            p10 = np.maximum(fc + sc * np.minimum(lo_b[s_], 0), 0)
            p90 = np.maximum(fc + sc * np.maximum(hi_b[s_], 0), fc)
            a = act[test]
            inside = np.concatenate([inside, (a >= p10 - 1e-9) & (a <= p90 + 1e-9)])
    coverage = float(inside.mean()) if inside.size else float("nan")
    p50 = point
    p10 = np.maximum(p50 + scale[:, None] * np.minimum(lo_w, 0.0), 0.0)
    p90 = np.maximum(p50 + scale[:, None] * np.maximum(hi_w, 0.0), p50)

    # ---- frames --------------------------------------------------------------------------
    label = np.array(all_names, dtype=object)
    members_used = [
        ",".join(nm for j, nm in enumerate(names) if mem[j] and usable[j, i]) for i in range(n)
    ]
    model_name = np.where(no_model, FALLBACK, label[chosen]).astype(object)
    is_ens = (chosen == len(all_names) - 1) & ~no_model
    for i in np.flatnonzero(is_ens):
        model_name[i] = f"ensemble:{settings.ensemble_combine}({members_used[i]})"
    sku_arr = np.array(panel.skus, dtype=object)
    months = _index_to_date(np.arange(c, c + H))
    forecast = pl.DataFrame({
        "sku": np.repeat(sku_arr, H).tolist(),
        "month": pl.concat([months] * n) if n else pl.Series([], dtype=pl.Date),
        "model": np.repeat(model_name, H).tolist(),
        "p10": p10.ravel(),
        "p50": p50.ravel(),
        "p90": p90.ravel(),
    }, schema={"sku": pl.String, "month": pl.Date, "model": pl.String, "p10": pl.Float64,
               "p50": pl.Float64, "p90": pl.Float64})

    jj, ii, bb, ss = np.nonzero(np.isfinite(BT_all) & np.isfinite(act)[None])
    backtest = pl.DataFrame({
        "sku": sku_arr[ii].tolist(),
        "model": label[jj].tolist(),
        "origin": _index_to_date(origins[bb]) if ii.size else pl.Series([], dtype=pl.Date),
        "horizon_step": (ss + 1).astype(np.int32),
        "actual": act[ii, bb, ss],
        "forecast": BT_all[jj, ii, bb, ss],
    }, schema={"sku": pl.String, "model": pl.String, "origin": pl.Date, "horizon_step": pl.Int32,
               "actual": pl.Float64, "forecast": pl.Float64})

    J = len(all_names)
    backtest_errors = pl.DataFrame({
        "sku": np.tile(sku_arr, J).tolist(),
        "model": np.repeat(label, n).tolist(),
        "n": err["n"].ravel().astype(np.int64),
        "wape": err["wape"].ravel(),
        "mase": err["mase"].ravel(),
        "smape": err["smape"].ravel(),
        "bias": err["bias"].ravel(),
    }).with_columns(pl.col(c_).fill_nan(None) for c_ in ("wape", "mase", "smape", "bias"))

    sn_j = names.index("seasonal_naive") if "seasonal_naive" in names else None
    metric = settings.selection_metric
    chosen_err = err[metric][chosen, np.arange(n)]
    reason = np.where(
        no_model, "history too short for any candidate: mean of recent months",
        np.where(~has_score, "no backtest points: " + np.where(is_ens, "ensemble of usable candidates", "only usable candidate"),
                 np.where(is_ens, f"ensemble: lowest backtest {metric} (singles must win by {settings.switch_margin:.0%})"
                          if settings.selection_method == "best" else "ensemble by policy",
                          f"lowest backtest {metric} in segment")))
    selection = pl.DataFrame({
        "sku": sku_arr.tolist(),
        "segment": segment.tolist(),
        "model": model_name.tolist(),
        "reason": reason.tolist(),
        f"backtest_{metric}": np.where(no_model, np.nan, chosen_err),
        f"seasonal_naive_{metric}": err[metric][sn_j] if sn_j is not None else np.full(n, np.nan),
        "history_months": nobs,
        "nonzero_share": share,
    }).with_columns(pl.col(f"backtest_{metric}").fill_nan(None), pl.col(f"seasonal_naive_{metric}").fill_nan(None))

    metrics = _summary(bt_chosen, BT_all[sn_j] if sn_j is not None else None, act, scale, segment == REGULAR)
    metrics.update({
        "coverage_p10_p90": coverage,
        "skus": n,
        "intermittent_skus": int(intermittent.sum()),
        "ensemble_share": float(is_ens.mean()) if n else float("nan"),
        "backtest_origins": [str(d) for d in _index_to_date(origins).to_list()],
        "seconds_models": round(t_models, 3),
        "seconds_global_models": round(t_global, 3),
        "seconds_total": round(time.perf_counter() - t_start, 3),
    })
    jj, ii, hh = np.nonzero(np.isfinite(F_all))
    candidate_forecasts = pl.DataFrame({
        "sku": sku_arr[ii].tolist(),
        "model": label[jj].tolist(),
        "month": _index_to_date(c + hh) if ii.size else pl.Series([], dtype=pl.Date),
        "forecast": F_all[jj, ii, hh],
    }, schema={"sku": pl.String, "model": pl.String, "month": pl.Date, "forecast": pl.Float64})
    return ForecastResult(forecast=forecast, backtest=backtest, backtest_errors=backtest_errors,
                          selection=selection, coverage=coverage, metrics=metrics,
                          candidate_forecasts=candidate_forecasts)


def _summary(chosen: np.ndarray, snaive: np.ndarray | None, act: np.ndarray, scale: np.ndarray,
             regular: np.ndarray) -> dict[str, Any]:
    """Overall backtest accuracy of the published forecast against seasonal naive, on the
    points both have: WAPE (volume-weighted), MASE (mean of per-SKU MASE, m = season length)
    and sMAPE (M-competition). sMAPE is taken over regular SKUs only: on a month with zero
    sales any non-zero forecast scores the maximum 200, which says nothing about a slow mover's
    rate forecast."""
    ok = np.isfinite(chosen) & np.isfinite(act)
    if snaive is not None:
        ok &= np.isfinite(snaive)
    out: dict[str, Any] = {"backtest_points": int(ok.sum())}
    for nm, f in (("chosen", chosen), ("seasonal_naive", snaive)):
        if f is None:
            continue
        e = _errors(np.where(ok, f, np.nan), np.where(ok, act, np.nan), scale)
        a = np.abs(np.where(ok, act, 0)).sum()
        sae = np.abs(np.where(ok, f - act, 0)).sum()
        okr = ok & regular[:, None, None]
        den = np.abs(f) + np.abs(act)
        sm = np.where(okr & (den > 0), 200 * np.abs(f - act) / np.where(okr & (den > 0), den, 1), 0.0)
        mase = e["mase"][np.isfinite(e["mase"])]
        out[f"{nm}_wape"] = float(sae / a) if a > 0 else float("nan")
        out[f"{nm}_mase"] = float(mase.mean()) if mase.size else float("nan")
        out[f"{nm}_smape"] = float(sm.sum() / okr.sum()) if okr.any() else float("nan")
    return out


def with_horizon(settings: ForecastSettings, horizon: int) -> ForecastSettings:
    """The same settings for another horizon (the backtest never scores beyond it)."""
    return replace(settings, horizon=int(horizon), backtest_max_step=min(settings.backtest_max_step, int(horizon)))
