"""`models/scenarios.yaml`: the what-ifs solved next to the baseline in every cycle.

A scenario is a list of overlays on the cycle's own inputs, each of one kind with its own
keys; an overlay with a key its kind does not take, or without one it needs, is an error in
the file, not a scenario that silently equals the baseline.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from sop_pipeline.settings.base import StrictModel

BASELINE = "baseline"

# months: absent (whole horizon), {from: 0, to: 2} (offsets from the cycle month) or fixed
# months ({from: '2027-01', to: '2027-03'}, ['2027-01', '2027-02'] or '2027-01').
Months = Union[dict[Literal["from", "to"], Union[int, str]], list[str], str, None]


class _Overlay(StrictModel):
    @property
    def params(self) -> dict[str, Any]:
        """The overlay's keys as written (unset optional keys left out)."""
        return self.model_dump(exclude={"kind"}, exclude_none=True)


class _FamilyOrSku(_Overlay):
    family: str | None = None
    sku: str | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self):
        if (self.family is None) == (self.sku is None):
            raise ValueError(f"{self.kind} needs exactly one of family or sku")
        return self


class DemandChange(_FamilyOrSku):
    kind: Literal["demand_change"]
    pct: float
    months: Months = None


class PriceChange(_FamilyOrSku):
    """Money only: the financial review prices the scenario with it; supply is unchanged."""

    kind: Literal["price_change"]
    pct: float
    months: Months = None


class CapacityChange(_Overlay):
    kind: Literal["capacity_change"]
    resource: str
    factor: float = Field(ge=0)
    months: Months = None
    # true: overtime hours scale with the factor; false: unchanged; a number: their own factor.
    overtime: Union[bool, float] = True


class LeadTimeChange(_Overlay):
    kind: Literal["lead_time_change"]
    factor: float = Field(gt=0)
    supplier: str | None = None
    material: str | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self):
        if (self.supplier is None) == (self.material is None):
            raise ValueError("lead_time_change needs exactly one of supplier or material")
        return self


Overlay = Annotated[Union[DemandChange, PriceChange, CapacityChange, LeadTimeChange], Field(discriminator="kind")]
OVERLAY_KINDS = ("demand_change", "capacity_change", "lead_time_change", "price_change")


# risk: something that may happen to us (exposure, never a lever); opportunity: upside the
# business may win; lever: an option management can decide to take (the reconciliation
# proposes only these to close a gap, with their cost).
SCENARIO_KINDS = ("risk", "opportunity", "lever")
ScenarioKind = Literal["baseline", "risk", "opportunity", "lever"]


class Scenario(StrictModel):
    name: str = ""
    kind: ScenarioKind = "risk"
    description: str = ""
    overlays: tuple[Overlay, ...] = ()


class _FileScenario(Scenario):
    """A scenario as written in the file: kind and description are required there, so the
    meeting always knows whether a what-if is a threat, an upside or a decision."""

    kind: Literal["risk", "opportunity", "lever"]
    description: str = Field(min_length=1)


class ScenarioFile(StrictModel):
    scenarios: dict[str, _FileScenario] = {}

    @model_validator(mode="after")
    def _baseline_is_reserved(self):
        if BASELINE in self.scenarios:
            raise ValueError(f"'{BASELINE}' is reserved for the unchanged plan")
        return self

    def named(self) -> dict[str, Scenario]:
        """Every scenario by name, `baseline` first (empty: the consensus against today's supply)."""
        named = {BASELINE: Scenario(name=BASELINE, kind="baseline", description="The consensus demand against today's supply base.")}
        for name, scenario in self.scenarios.items():
            named[name] = Scenario(**{**scenario.model_dump(exclude={"overlays"}), "overlays": scenario.overlays, "name": name})
        return named
