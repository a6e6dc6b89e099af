"""`models/product.yaml`: lifecycle ramps and the segmentation's thresholds."""

from __future__ import annotations

from pydantic import Field, model_validator

from sop_pipeline.settings.base import StrictModel


class LifecycleSettings(StrictModel):
    # A new product reaches full volume over this many months (1/3, 2/3, 1 for three).
    npi_ramp_months: int = Field(3, ge=1, le=24)
    # A dying product fades over the months before its discontinue month.
    phase_out_ramp_months: int = Field(3, ge=0, le=24)
    # p10 and p90 of a launch forecast from `launch_volume` alone, as multiples of it: with
    # no history to measure the error on, the band is a stated assumption.
    launch_volume_band: tuple[float, float] = (0.7, 1.3)

    @model_validator(mode="after")
    def _band_brackets_one(self):
        low, high = self.launch_volume_band
        if not 0 <= low <= 1 <= high:
            raise ValueError("launch_volume_band must be [low, high] with 0 <= low <= 1 <= high")
        return self


class SegmentationSettings(StrictModel):
    # History used to measure variability and intermittency.
    window_months: int = Field(24, ge=6)
    abc_revenue_window_months: int = Field(12, ge=1)
    # Cumulative revenue share closing class A, then B; the rest is C.
    abc_thresholds: tuple[float, float] = (0.80, 0.95)
    # Coefficient of variation closing class X, then Y; the rest is Z.
    xyz_thresholds: tuple[float, float] = (0.50, 1.00)
    # Syntetos-Boylan cut-offs: average demand interval and squared CV of non-zero sizes.
    intermittent_adi: float = Field(1.32, gt=1)
    intermittent_cv2: float = Field(0.49, ge=0)
    # Fewer months of history than this: the SKU is segmented as 'new'.
    min_history_months: int = Field(6, ge=1)


class ProductSettings(StrictModel):
    lifecycle: LifecycleSettings = LifecycleSettings()
    segmentation: SegmentationSettings = SegmentationSettings()
