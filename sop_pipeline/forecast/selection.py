"""Ensemble and per-SKU selection.

The ensemble combines its members per SKU, by default weighted by the inverse square of each
member's backtest MASE (a member that tracked the SKU badly gets little say, a runaway one
almost none), else their median or mean. It is scored in the backtest like any candidate; under
`selection.method: best` a SKU leaves it only for a single candidate that beat it clearly.

Honest error: whatever is fitted on backtest errors (the weights, the choice) is fitted, for the
backtest forecast at origin b, only on points whose month lies before origin b (a nested,
rolling held-out origin). The published forecast's backtest (`_Choice.bt`), its reported error
and its bands therefore come from points that did not choose it; the earliest origin, with no
earlier evidence, gets the equal-weight ensemble (or the fallback preference)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sop_pipeline.forecast.backtest import _errors
from sop_pipeline.forecast.panel import _Profile
from sop_pipeline.settings.forecast import REGULAR, ForecastSettings

ENSEMBLE = "ensemble"
FALLBACK = "fallback:recent_mean"
PUBLISHED = "published"


def _combine(stack: np.ndarray, how: str, weights: np.ndarray | None = None) -> np.ndarray:
    """Combine member forecasts along axis 0, ignoring members that are missing (NaN).
    `weights` (members x SKUs, for `inverse_error`) need not sum to one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "inverse_error" and weights is not None:
            w = np.where(np.isfinite(stack), weights.reshape(weights.shape + (1,) * (stack.ndim - weights.ndim)), 0.0)
            tot = w.sum(axis=0)
            out = np.where(tot > 0, (w * np.nan_to_num(stack)).sum(axis=0) / np.where(tot > 0, tot, 1.0), np.nan)
            return np.where(np.isfinite(stack).any(axis=0), out, np.nan)
        if how in ("mean", "inverse_error"):
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


def _before(origins: np.ndarray, S: int) -> np.ndarray:
    """B x B x S: may the backtest point (origin b', step s) inform a forecast made at origin b?
    Only when its month lies before origin b."""
    months = origins[:, None] + np.arange(S)[None, :]
    return months[None, :, :] < origins[:, None, None]


def _member_mase(bt: np.ndarray, act: np.ndarray, scale: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Members x SKUs: mean absolute backtest error over the allowed (B x S) points, in MASE
    scale units; NaN where a member has no such point."""
    ok = np.isfinite(bt) & np.isfinite(act)[None] & allowed[None, None]
    cnt = ok.sum(axis=(2, 3))
    sae = np.where(ok, np.abs(bt - act[None]), 0.0).sum(axis=(2, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, sae / np.maximum(cnt, 1) / np.where(scale > 0, scale, 1.0)[None], np.nan)


def _inverse_error_weights(err: np.ndarray, power: float) -> np.ndarray:
    """Weights 1 / err**power per member and SKU. A member without backtest evidence counts as
    the SKU's median member; a SKU without any evidence gets equal weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(err, axis=0)
    e = np.where(np.isfinite(err), err, med[None])
    e = np.where(np.isfinite(e), e, 1.0)
    # a floor so a member that was exact on a few points does not take all the weight
    return 1.0 / np.maximum(e, 0.05) ** power


def _with_ensemble(
    final: np.ndarray,
    bt: np.ndarray,
    usable: np.ndarray,
    settings: ForecastSettings,
    act: np.ndarray,
    scale: np.ndarray,
    origins: np.ndarray,
) -> _Candidates:
    names = list(settings.candidates)
    mem = np.array([nm in settings.ensemble_members for nm in names])
    how, power = settings.selection.ensemble.combine, settings.selection.ensemble.power
    m_final, m_bt = final[mem], bt[mem]
    B, S = act.shape[1], act.shape[2]
    w_final = _inverse_error_weights(_member_mase(m_bt, act, scale, np.ones((B, S), bool)), power) if how == "inverse_error" else None
    ens_final = _combine(m_final, how, w_final)
    ens_bt = np.full(bt.shape[1:], np.nan)
    for b, allowed in enumerate(_before(origins, S)):
        # the backtest forecast at origin b is weighted on the months before it only
        w_b = _inverse_error_weights(_member_mase(m_bt, act, scale, allowed), power) if how == "inverse_error" else None
        ens_bt[:, b] = _combine(m_bt[:, :, b], how, w_b)
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


def _choose(cands: _Candidates, act: np.ndarray, scale: np.ndarray, eligible: np.ndarray, settings: ForecastSettings, allowed: np.ndarray):
    """Per SKU the candidate with the lowest backtest error over the `allowed` (B x S) points,
    singles handicapped by the switch margin; and whether any evidence decided it."""
    # Compare candidates on the backtest points they all have, so a model that skipped a hard
    # early origin is not favoured. A candidate without a single backtest point (history too
    # short at every origin) may still vote in the ensemble but cannot be chosen on evidence
    # it does not have.
    pts = np.isfinite(act) & allowed[None]
    has_bt = np.any(np.isfinite(cands.bt) & pts[None], axis=(2, 3))
    judged = eligible & has_bt
    common = np.all(np.where(judged[:, :, None, None], np.isfinite(cands.bt), True), axis=0) & pts
    score = _errors(np.where(common[None], cands.bt, np.nan), act[None], scale[None])[settings.selection.metric]
    score = np.where(judged & np.isfinite(score), score, np.inf)
    has_score = np.isfinite(score).any(axis=0)
    margin = np.ones(len(cands.names))
    margin[:-1] = 1.0 - settings.selection.switch_margin  # singles must beat the ensemble clearly
    eff = np.where(_segment_of(settings)[:, None] == REGULAR, score / margin[:, None], score)
    eff[-1] = score[-1]
    # no backtest evidence (short history): publish the ensemble, else any usable candidate
    fallback_pref = np.where(eligible[-1], cands.ensemble, np.argmax(eligible, axis=0))
    return np.where(has_score, np.argmin(eff, axis=0), fallback_pref), has_score


def _select(cands: _Candidates, act: np.ndarray, prof: _Profile, settings: ForecastSettings, origins: np.ndarray) -> _Choice:
    n, B, S = act.shape
    scale = prof.scale
    eligible = _eligible(cands, prof, settings)
    chosen, has_score = _choose(cands, act, scale, eligible, settings, np.ones((B, S), bool))
    no_model = ~eligible[chosen, np.arange(n)].astype(bool)

    # a SKU no candidate can forecast (a handful of months of history): recent mean, flat
    point = np.where(no_model[:, None], prof.recent_mean[:, None], cands.final[chosen, np.arange(n)])
    # The published forecast's backtest, nested: at origin b the choice rests on the months
    # before b only, so its error is measured on points that did not choose it.
    bt = np.full((n, B, S), np.nan)
    for b, allowed in enumerate(_before(origins, S)):
        chosen_b, _ = _choose(cands, act, scale, eligible, settings, allowed)
        bt[:, b] = cands.bt[chosen_b, np.arange(n), b]
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
