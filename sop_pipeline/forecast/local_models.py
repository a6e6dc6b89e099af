"""Local models: one darts (statsforecast-backed) model per SKU and candidate, fitted in
worker processes, plus seasonal naive, which is vectorised instead.

Each model is fitted once on the full history (the published forecast, and the automatic
structure search), and the backtest reuses that structure (see `_local_chunk`)."""

from __future__ import annotations

import logging
import multiprocessing as _mp
import sys
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from sop_pipeline.forecast.panel import _right_aligned
from sop_pipeline.settings.forecast import Candidate, ForecastSettings


def _cache_compiled_models() -> None:
    """Keep statsforecast's numba-compiled CES, ETS and Theta code on disk (numba's cache next
    to the package, or its user cache directory when that is read-only). statsforecast does not
    ask for caching, so every process compiled them again: AutoCES alone took 26 CPU seconds
    (100 s wall on the loaded 2-core machine) before its first fit, in every worker of every
    run. With the cache, a process loads them in a second or two."""
    import statsforecast.ces
    import statsforecast.ets
    import statsforecast.theta
    from numba.core.dispatcher import Dispatcher

    for module in (statsforecast.ces, statsforecast.ets, statsforecast.theta):
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and value._cache.__class__.__name__ == "NullCache":
                value.enable_caching()


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


def _make_local(spec: Candidate, positive: bool = False):
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
        return dm.StatsForecastModel(model=params.pop("model"), model_kwargs=params, min_train_length=spec.min_history)
    cls = getattr(dm, spec.model)
    if spec.model == "NaiveSeasonal":
        return cls(**params)
    return cls(**params, min_train_length=spec.min_history)


# statsforecast's CES `forward` keeps the fitted initial states, which do not belong to a
# shorter series: its re-filtered forecasts explode. CES is cheap with a pinned season type, so
# it is refitted at every origin instead.
_FORWARD_UNSAFE = ("AutoCES",)


def _sane(v: np.ndarray, y: np.ndarray, cap: float) -> bool:
    """A forecast an optimiser ran away with (non-finite, or ten times anything ever sold)
    is a failed fit, not a candidate."""
    return bool(np.all(np.isfinite(v)) and np.max(np.abs(v), initial=0.0) <= cap * np.max(np.abs(y), initial=0.0) + cap)


def _pinned(spec: Candidate, fitted) -> Any:
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
    return getattr(dm, spec.model)(**params, min_train_length=spec.min_history) if spec.model != "StatsForecastModel" else _make_local(spec)


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
    specs, ys, lens_at_origin, run, H, S, mode, cap = task
    if quiet:
        _quiet()
    _cache_compiled_models()  # a spawned worker has its own modules
    from darts import TimeSeries

    n_sku, B = len(ys), lens_at_origin.shape[1]
    final = np.full((len(specs), n_sku, H), np.nan)
    bt = np.full((len(specs), n_sku, B, S), np.nan)
    for j, spec in enumerate(specs):
        for i, y in enumerate(ys):
            if y.shape[0] < spec.min_history or not run[j, i]:
                continue
            try:
                model = _make_local(spec, bool(np.all(y > 0))).fit(TimeSeries.from_values(y))
                v = model.predict(H).values(copy=False)[:, 0]
            except Exception:  # noqa: BLE001, S112 - statsforecast raises bare Exception; a model
                continue  # that cannot fit this series is simply not a candidate for it
            if not _sane(v, y, cap):
                continue
            final[j, i] = v
            bt[j, i] = _local_backtest(spec, model, y, lens_at_origin[i], S, mode, cap)
    return final, bt


def _local_backtest(spec: Candidate, model, y: np.ndarray, lens: np.ndarray, S: int, mode: str, cap: float) -> np.ndarray:
    """One series' backtest (B x S) given its full-history fit `model`, as `mode` says."""
    from darts import TimeSeries

    out = np.full((lens.shape[0], S), np.nan)
    origin_model = None
    for b in np.flatnonzero(lens >= spec.min_history):
        L = int(lens[b])
        steps = min(S, y.shape[0] - L)
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
            if _sane(v, y[:L], cap):
                out[b, :steps] = v
        except Exception:  # noqa: BLE001, S112 - no backtest at this origin, same reason
            continue
    return out


def _seasonal_naive(ys: list[np.ndarray], lens: np.ndarray, K: int, min_history: int, H: int, S: int) -> tuple[np.ndarray, np.ndarray]:
    """darts ``NaiveSeasonal(K)`` (repeat the last K values) for every SKU and origin at once.

    The benchmark everybody must beat costs nothing to compute, so it should not pay darts'
    per-series model overhead either; `test_seasonal_naive_matches_darts` pins the equivalence."""
    n, B = len(ys), lens.shape[1]
    Y, L = _right_aligned(ys)  # column W - 1 holds each series' last month
    W = Y.shape[1]
    if not W:
        return np.full((n, H), np.nan), np.full((n, B, S), np.nan)
    need = max(K, min_history)
    # step h repeats the value K - h % K months before the end of the history (or the origin)
    final = np.where((L >= need)[:, None], Y[:, np.clip(W - K + np.arange(H) % K, 0, W - 1)], np.nan)
    steps = np.arange(S)[None, None, :]
    col = (W - L)[:, None, None] + lens[:, :, None] - K + steps % K
    ok = (lens >= need)[:, :, None] & (steps < (L[:, None] - lens)[:, :, None])
    bt = np.where(ok, Y[np.arange(n)[:, None, None], np.clip(col, 0, W - 1)], np.nan)
    return final, bt


def _local_tasks(
    specs: list[Candidate], ys: list[np.ndarray], lens: np.ndarray, run: np.ndarray, H: int, S: int, settings: ForecastSettings
) -> tuple[list[np.ndarray], list[tuple]]:
    """The SKUs split into chunks, one `_local_chunk` task each; `run` (specs x SKUs) says
    which candidate to fit on which SKU."""
    n = len(ys)
    n_jobs = max(1, int(settings.execution.n_jobs))
    n_chunks = 1 if (n_jobs == 1 or n < 8) else min(n, n_jobs * max(1, settings.execution.chunks_per_job))
    # Interleaved chunks balance long and short series across workers; results go back to the
    # SKU's position, so the output does not depend on scheduling.
    parts = [np.arange(k, n, n_chunks) for k in range(n_chunks)]
    tasks = [(specs, [ys[i] for i in p], lens[p], run[:, p], H, S, settings.backtest.refit, settings.sanity_cap) for p in parts]
    return parts, tasks


def _executor(settings: ForecastSettings) -> ProcessPoolExecutor:
    """Worker pool for the local models. `auto` forks on Linux: workers inherit the imported
    darts/statsforecast instead of re-importing them (seconds per worker), and they only run
    numpy/statsforecast code, never polars. Elsewhere, or when a host process makes fork
    unsafe, `forkserver`/`spawn` trade that start-up time for isolation."""
    method = settings.execution.start_method
    if method == "auto":
        method = "fork" if sys.platform.startswith("linux") else "spawn"
    if method not in _mp.get_all_start_methods():
        method = None
    return ProcessPoolExecutor(max_workers=max(1, int(settings.execution.n_jobs)), mp_context=_mp.get_context(method))


@contextmanager
def _local_fits(
    specs: list[Candidate], ys: list[np.ndarray], lens: np.ndarray, run: np.ndarray, H: int, S: int, settings: ForecastSettings
) -> Iterator[Callable[[], tuple[np.ndarray, np.ndarray]]]:
    """Start fitting the local candidates and yield a function that waits for them and returns
    (final, backtest) for specs x SKUs. With more than one chunk the fits run in worker
    processes, so the caller computes the cheap candidates meanwhile; with one they run in
    this process when collected."""
    n, B = len(ys), lens.shape[1]
    final = np.full((len(specs), n, H), np.nan)
    bt = np.full((len(specs), n, B, S), np.nan)
    parts, tasks = _local_tasks(specs, ys, lens, run, H, S, settings)
    pool = None
    if specs:
        _cache_compiled_models()  # before any fit, and before forked workers inherit the models
    if specs and len(tasks) > 1:
        import darts.models  # noqa: F401  (imported once here, inherited by forked workers)

        pool = _executor(settings)
    try:
        pending = [pool.submit(_local_chunk, t) for t in tasks] if pool else []

        def collect() -> tuple[np.ndarray, np.ndarray]:
            if pool:
                results = [f.result() for f in pending]
            elif specs and tasks:
                with _silenced():
                    results = [_local_chunk(tasks[0], quiet=False)]
            else:
                results = []
            for p, (f, b) in zip(parts, results):
                final[:, p] = f
                bt[:, p] = b
            return final, bt

        yield collect
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
