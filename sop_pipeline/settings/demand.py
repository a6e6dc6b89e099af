"""`models/demand.yaml`: how the consensus is assembled from the statistical forecast and
the sales and marketing inputs."""

from __future__ import annotations

from sop_pipeline.settings.base import StrictModel


class ConsensusSettings(StrictModel):
    # Order in which input layers apply on top of the statistical forecast; layers not listed
    # follow in alphabetical order.
    layer_order: tuple[str, ...] = ("sales", "marketing")
    # Where the statistical forecast is zero there is no band to scale; an input's quantity then
    # gets this band (p10, p90 as multiples of the quantity), a stated assumption.
    band_without_statistical: tuple[float, float] = (0.5, 1.5)


class DemandSettings(StrictModel):
    consensus: ConsensusSettings = ConsensusSettings()
