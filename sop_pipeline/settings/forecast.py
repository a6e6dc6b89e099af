"""`models/forecast.yaml`: the statistical forecast's candidates, backtest, selection and bands.

The horizon is not here: it is the planning calendar's (`models/calendar.yaml`). `profiles`
hold named overrides (deep-merged, `null` removes an entry) so a benchmark can run the same
code with settings tuned for its data, labelled as such, without a second file drifting
from the first.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sop_pipeline.settings.base import StrictModel

REGULAR, INTERMITTENT = "regular", "intermittent"
LOCAL_MODELS = ("NaiveSeasonal", "AutoETS", "AutoTheta", "AutoCES", "Croston", "StatsForecastModel")
GLOBAL_MODELS = ("LinearRegressionModel", "LightGBMModel", "SKLearnModel")


class GlobalFeatures(StrictModel):
    calendar: bool = True
    price: bool = True
    promotion: bool = True
    indicators: bool = True
    # target = log(quantity / recent level + log_offset)
    log_offset: float = Field(1.0, gt=0)


class Candidate(StrictModel):
    """One forecasting method the backtest may choose (a darts model class and its arguments)."""

    name: str = ""  # its key in `candidates`
    model: Literal[LOCAL_MODELS + GLOBAL_MODELS]  # type: ignore[valid-type]
    params: dict[str, Any] = {}
    # months of history the candidate needs (else it is skipped for the SKU)
    min_history: int = Field(12, ge=1)
    # which SKUs may publish it; every candidate is still backtested on every SKU
    segment: Literal["regular", "intermittent"] = "regular"
    is_global: bool = Field(False, alias="global")
    features: GlobalFeatures = GlobalFeatures()
    estimator: dict[str, Any] | None = None

    model_config = {**StrictModel.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _global_models_are_global(self):
        if (self.model in GLOBAL_MODELS) != self.is_global:
            raise ValueError(f"model {self.model} must {'' if self.model in GLOBAL_MODELS else 'not '}be marked global: true")
        return self


class Backtest(StrictModel):
    origins: int = Field(4, ge=1)
    spacing: int = Field(3, ge=1)
    max_step: int = Field(12, ge=1)
    # origin: refit once at the earliest origin with the full-history structure; none: re-filter
    # the full-history model (optimistic); all: full refit at every origin (slowest)
    refit: Literal["origin", "none", "all"] = "origin"
    all_segments: bool = True


class Ensemble(StrictModel):
    # empty: every regular candidate
    members: tuple[str, ...] = ()
    # inverse_error: per-SKU weights 1 / (backtest MASE)**power; median, mean, trimmed_mean: unweighted
    combine: Literal["inverse_error", "median", "mean", "trimmed_mean"] = "inverse_error"
    power: float = Field(2.0, ge=0)


class Selection(StrictModel):
    method: Literal["best", "ensemble"] = "ensemble"
    metric: Literal["mase", "wape", "smape"] = "mase"
    switch_margin: float = Field(0.25, ge=0, lt=1)
    ensemble: Ensemble = Ensemble()


class Segments(StrictModel):
    intermittent_max_nonzero_share: float = Field(0.5, ge=0, le=1)


class Quantiles(StrictModel):
    low: float = 0.1
    high: float = 0.9
    min_points: int = Field(20, ge=1)
    default_exponent: float = 0.5
    # past the last backtested step the band widens at least like (h / last_step) ** this
    beyond_exponent: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self):
        if not 0 < self.low < 0.5 < self.high < 1:
            raise ValueError("quantiles must satisfy 0 < low < 0.5 < high < 1")
        return self


class Execution(StrictModel):
    n_jobs: int = Field(2, ge=1)
    start_method: Literal["auto", "fork", "forkserver", "spawn"] = "auto"
    chunks_per_job: int = Field(4, ge=1)
    random_state: int = 0


class ForecastSettings(StrictModel):
    season_length: int = Field(12, ge=1)
    candidates: dict[str, Candidate]
    backtest: Backtest = Backtest()
    selection: Selection = Selection()
    segments: Segments = Segments()
    quantiles: Quantiles = Quantiles()
    execution: Execution = Execution()
    # A candidate's forecast above this multiple of the largest month ever sold is a runaway
    # fit, not a forecast: it is discarded for that SKU.
    sanity_cap: float = Field(10.0, gt=1)
    profiles: dict[str, dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _name_candidates(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("candidates"), dict):
            raw = {**raw, "candidates": {k: ({**v, "name": k} if isinstance(v, dict) else v) for k, v in raw["candidates"].items()}}
        return raw

    @model_validator(mode="after")
    def _members_are_candidates(self):
        if not self.candidates:
            raise ValueError("at least one candidate is required")
        unknown = set(self.selection.ensemble.members) - set(self.candidates)
        if unknown:
            raise ValueError(f"ensemble members {sorted(unknown)} are not candidates")
        return self

    @property
    def candidate_list(self) -> tuple[Candidate, ...]:
        return tuple(self.candidates.values())

    @property
    def ensemble_members(self) -> tuple[str, ...]:
        members = self.selection.ensemble.members
        return members or tuple(n for n, c in self.candidates.items() if c.segment == "regular")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Profile overrides: nested dicts merge, a null removes the key (e.g. a candidate)."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
