"""The global model: one regression fitted across every SKU on level-normalised log demand,
with calendar, price, promotion and indicator covariates (darts regression models, fitted
in the parent process)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sop_pipeline.forecast.panel import _Panel
from sop_pipeline.settings.forecast import Candidate


def _level(y: np.ndarray, L: int, season: int) -> float:
    """Recent level used to normalise a series for the global model: mean of the last season
    before the origin, falling back to the whole past when that is zero."""
    w = y[max(0, L - season) : L]
    lv = float(w.mean()) if w.size else 0.0
    if lv <= 0:
        lv = float(y[:L].mean()) if L > 0 else 0.0
    return lv if lv > 0 else 1.0


def _global_covariates(panel: _Panel, i: int, spec: Candidate, end: int):
    """Future covariates of SKU i from its first month to `end` (exclusive): calendar
    (sin/cos of month), log relative price, promotion share and its lag (post-promotion dip),
    standardised indicators."""
    feats = spec.features
    a0 = int(panel.start[i])
    idx = np.arange(a0 - 1, end)  # one month earlier so a lag -1 covariate exists
    cols = []
    if feats.calendar:
        ang = 2 * np.pi * (idx % 12) / 12
        cols += [np.sin(ang), np.cos(ang)]
    k = idx - panel.t0
    width = panel.price if panel.price is not None else panel.promo
    width = width.shape[1] if width is not None else (panel.indicators.shape[0] if panel.indicators is not None else 1)
    kk = np.clip(k, 0, width - 1)
    if feats.price and panel.price is not None:
        cols.append(np.where(k >= 0, panel.price[i, kk], 0.0))
    if feats.promotion and panel.promo is not None:
        cols.append(np.where(k >= 0, panel.promo[i, kk], 0.0))
    if feats.indicators and panel.indicators is not None:
        for c in range(panel.indicators.shape[1]):
            cols.append(np.where(k >= 0, panel.indicators[kk, c], 0.0))
    return idx, np.column_stack(cols) if cols else None


def _make_global(spec: Candidate, has_cov: bool, seed: int):
    import darts.models as dm

    params = dict(spec.params)
    lags_fc = params.pop("lags_future_covariates", [-1, 0]) if has_cov else None
    if spec.model == "LinearRegressionModel":
        return dm.LinearRegressionModel(lags_future_covariates=lags_fc, random_state=seed, **params)
    if spec.model == "LightGBMModel":
        params.setdefault("verbose", -1)
        return dm.LightGBMModel(lags_future_covariates=lags_fc, random_state=seed, **params)
    est = dict(spec.estimator or {"class": "HistGradientBoostingRegressor"})
    cls_name = est.pop("class")
    import sklearn.ensemble as ske
    import sklearn.linear_model as skl

    cls = getattr(ske, cls_name, None) or getattr(skl, cls_name)
    if "random_state" in cls().get_params():
        est.setdefault("random_state", seed)
    return dm.SKLearnModel(model=cls(**est), lags_future_covariates=lags_fc, **params)


@dataclass
class _GlobalData:
    """What every fit of one global model reads: the target transform and each SKU's
    covariate series."""

    panel: _Panel
    season: int
    delta: float  # log offset: log(y / level + delta) keeps zeros finite
    cov_ts: list  # future covariates per SKU (darts TimeSeries), or None each
    has_cov: bool

    def target(self, i: int, L: int):
        """SKU i's first L months as the model's target, and the level they were divided by."""
        from darts import TimeSeries

        y = self.panel.ys[i]
        lv = _level(y, L, self.season)
        a0 = int(self.panel.start[i])
        z = np.log(np.maximum(y[:L], 0.0) / lv + self.delta)
        return TimeSeries.from_times_and_values(_range_index(np.arange(a0, a0 + L)), z), lv

    def covariates(self, ids: list[int]) -> list | None:
        return [self.cov_ts[i] for i in ids] if self.has_cov else None

    def demand(self, z: np.ndarray, lv: float) -> np.ndarray:
        """The target transform undone: units."""
        return np.maximum((np.exp(z) - self.delta) * lv, 0.0)


def _global_data(spec: Candidate, panel: _Panel, end: int, season: int) -> _GlobalData:
    from darts import TimeSeries

    covs = [_global_covariates(panel, i, spec, end) for i in range(len(panel.ys))]
    cov_ts = [TimeSeries.from_times_and_values(_range_index(idx), v) if v is not None else None for idx, v in covs]
    return _GlobalData(
        panel=panel, season=season, delta=float(spec.features.log_offset), cov_ts=cov_ts, has_cov=covs[0][1] is not None if covs else False
    )


def _fit_predict(spec: Candidate, data: _GlobalData, train: list[int], fit_end: list[int], seed: int):
    """A global model fitted on the SKUs `train`, each on its months before `fit_end`, and a
    function forecasting `steps` months for SKUs `ids` from their months before `ends`."""
    model = _make_global(spec, data.has_cov, seed)
    tr = [data.target(i, e - int(data.panel.start[i]))[0] for i, e in zip(train, fit_end)]
    model.fit(tr, future_covariates=data.covariates(train))

    def predict(steps: int, ids: list[int], ends: list[int]) -> list[np.ndarray]:
        tl = [data.target(i, e - int(data.panel.start[i])) for i, e in zip(ids, ends)]
        pred = model.predict(steps, series=[t for t, _ in tl], future_covariates=data.covariates(ids))
        return [data.demand(p.values(copy=False)[:, 0], lv) for (_, lv), p in zip(tl, pred)]

    return predict


def _run_global(
    spec: Candidate, panel: _Panel, c: int, origins: np.ndarray, H: int, S: int, season: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one regression across all SKUs on level-normalised log demand.

    Normalising by each SKU's recent level puts a 5-unit and a 5,000-unit SKU on one scale, and
    the log turns seasonality, trend, price elasticity and promotion lift into additive
    effects a linear model can share across SKUs. The backtest model is trained only on data
    before the first origin (no leakage; a single fit serves all origins)."""
    n, B = len(panel.ys), origins.shape[0]
    final = np.full((n, H), np.nan)
    bt = np.full((n, B, S), np.nan)
    ocl = int(spec.params.get("output_chunk_length", 1))
    min_hist = max(spec.min_history, int(spec.params.get("lags", 12)) + 1)
    data = _global_data(spec, panel, c + H, season)
    start = panel.start.astype(int).tolist()

    # backtest model: trained on data before the first origin
    first = int(origins.min()) if B else c
    train = [i for i in range(n) if first - start[i] >= min_hist + ocl]
    if B and len(train) >= 2:
        predict = _fit_predict(spec, data, train, [first] * len(train), seed)
        for b in range(B):
            o = int(origins[b])
            steps = min(S, c - o)
            ids = [i for i in range(n) if o - start[i] >= min_hist]
            if ids and steps >= 1:
                bt[ids, b, :steps] = predict(steps, ids, [o] * len(ids))

    # final model: all history
    train = [i for i in range(n) if c - start[i] >= min_hist + ocl]
    if len(train) >= 2:
        predict = _fit_predict(spec, data, train, [c] * len(train), seed)
        ids = [i for i in range(n) if c - start[i] >= min_hist]
        final[ids] = predict(H, ids, [c] * len(ids))
    return final, bt


def _range_index(idx: np.ndarray):
    import pandas as pd

    return pd.RangeIndex(int(idx[0]), int(idx[-1]) + 1)
