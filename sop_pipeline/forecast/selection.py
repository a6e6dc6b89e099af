"""Ensemble and per-SKU selection: the median (or mean) of the members is scored in the
backtest like any candidate, and a SKU leaves it only for a single candidate that beat it
clearly, compared on the backtest points both have."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sop_pipeline.forecast.backtest import _errors
from sop_pipeline.forecast.panel import _Profile
from sop_pipeline.settings.forecast import REGULAR, ForecastSettings

ENSEMBLE = "ensemble"
FALLBACK = "fallback:recent_mean"


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


@dataclass(frozen=True)
class _Candidates:
    """Every candidate and, last, the ensemble (a pseudo-candidate scored like the others)."""

    names: list[str]  # J + 1: candidate names, then ENSEMBLE
    final: np.ndarray  # (J + 1) x n_sku x H forecasts, NaN where a candidate is not usable
    bt: np.ndarray  # (J + 1) x n_sku x B x S backtest forecasts
    usable: np.ndarray  # (J + 1) x n_sku: produced a finite, sane forecast
    members: np.ndarray  # J: votes in the ensemble

    @property
    def ensemble(self) -> int:
        return len(self.names) - 1


def _with_ensemble(final: np.ndarray, bt: np.ndarray, usable: np.ndarray, settings: ForecastSettings) -> _Candidates:
    names = list(settings.candidates)
    mem = np.array([nm in settings.ensemble_members for nm in names])
    ens_final = _combine(np.where(mem[:, None, None], final, np.nan), settings.selection.ensemble.combine)
    ens_bt = _combine(np.where(mem[:, None, None, None], bt, np.nan), settings.selection.ensemble.combine)
    return _Candidates(
        names=[*names, ENSEMBLE],
        final=np.concatenate([final, ens_final[None]], axis=0),
        bt=np.concatenate([bt, ens_bt[None]], axis=0),
        usable=np.concatenate([usable, np.all(np.isfinite(ens_final), axis=1)[None]], axis=0),
        members=mem,
    )


@dataclass(frozen=True)
class _Choice:
    """The published model per SKU and what it says."""

    chosen: np.ndarray  # n_sku: index into the candidates (the ensemble last)
    no_model: np.ndarray  # no candidate can forecast the SKU: the recent mean, flat
    has_score: np.ndarray  # chosen on backtest evidence (else by preference)
    is_ensemble: np.ndarray
    point: np.ndarray  # n_sku x H: the published forecast (p50)
    bt: np.ndarray  # n_sku x B x S: its backtest, NaN for the recent-mean fallback
    errors: dict[str, np.ndarray]  # every candidate's backtest errors, (J + 1) x n_sku each


def _segment_of(settings: ForecastSettings) -> np.ndarray:
    """The segment each candidate serves, the ensemble's (regular) last."""
    return np.array([s.segment for s in settings.candidate_list] + [REGULAR])


def _eligible(cands: _Candidates, prof: _Profile, settings: ForecastSettings) -> np.ndarray:
    """(J + 1) x n_sku: may the candidate be published for the SKU? Its segment must match
    (any candidate serves every SKU when no candidate is intermittent), the ensemble serves
    regular SKUs only, and under `selection.method: ensemble` regular singles never do."""
    seg_of = _segment_of(settings)
    segment = prof.segment
    eligible = cands.usable & ((seg_of[:, None] == segment[None, :]) | ((seg_of[:, None] == REGULAR) & (not prof.has_intermittent_method)))
    eligible[-1] &= segment == REGULAR
    if settings.selection.method == "ensemble":
        eligible[:-1] &= ~((seg_of[:-1, None] == REGULAR) & (segment[None, :] == REGULAR))
    return eligible


def _select(cands: _Candidates, act: np.ndarray, prof: _Profile, settings: ForecastSettings) -> _Choice:
    n = act.shape[0]
    scale = prof.scale
    eligible = _eligible(cands, prof, settings)
    # Compare candidates on the backtest points they all have, so a model that skipped a hard
    # early origin is not favoured. A candidate without a single backtest point (history too
    # short at every origin) may still vote in the ensemble but cannot be chosen on evidence
    # it does not have.
    has_bt = np.any(np.isfinite(cands.bt) & np.isfinite(act)[None], axis=(2, 3))
    judged = eligible & has_bt
    common = np.all(np.where(judged[:, :, None, None], np.isfinite(cands.bt), True), axis=0) & np.isfinite(act)
    score = _errors(np.where(common[None], cands.bt, np.nan), act[None], scale[None])[settings.selection.metric]
    score = np.where(judged & np.isfinite(score), score, np.inf)
    has_score = np.isfinite(score).any(axis=0)
    margin = np.ones(len(cands.names))
    margin[:-1] = 1.0 - settings.selection.switch_margin  # singles must beat the ensemble clearly
    eff = np.where(_segment_of(settings)[:, None] == REGULAR, score / margin[:, None], score)
    eff[-1] = score[-1]
    # no backtest evidence (short history): publish the ensemble, else any usable candidate
    fallback_pref = np.where(eligible[-1], cands.ensemble, np.argmax(eligible, axis=0))
    chosen = np.where(has_score, np.argmin(eff, axis=0), fallback_pref)
    no_model = ~eligible[chosen, np.arange(n)].astype(bool)

    # a SKU no candidate can forecast (a handful of months of history): recent mean, flat
    point = np.where(no_model[:, None], prof.recent_mean[:, None], cands.final[chosen, np.arange(n)])
    bt = cands.bt[chosen, np.arange(n)]
    bt[no_model] = np.nan
    return _Choice(
        chosen=chosen,
        no_model=no_model,
        has_score=has_score,
        is_ensemble=(chosen == cands.ensemble) & ~no_model,
        point=np.nan_to_num(np.maximum(point, 0.0)),
        bt=bt,
        errors=_errors(cands.bt, act[None], scale[None]),
    )
