"""Tables of the product review."""

from sop_pipeline.registry.base import Col, Table
from sop_pipeline.registry.common import CYCLE, FAMILY, MONTH, SKU, text

LIFECYCLE_STATUSES = ("pre_launch", "ramp_up", "active", "phase_out", "discontinued")
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "new", "no_demand")

PRODUCT_TABLES = (
    Table(
        "product_portfolio",
        "product_review",
        "One row per cycle, SKU and horizon month, for every SKU not discontinued before the cycle: lifecycle status "
        "and the ramp factor that multiplies its forecast.",
        ("cycle", "sku", "month"),
        (
            CYCLE,
            SKU,
            FAMILY,
            MONTH,
            text(
                "lifecycle_status",
                "pre_launch, ramp_up, active, phase_out or discontinued in that month (from the dates, not only the status column).",
                isin=LIFECYCLE_STATUSES,
            ),
            text("like_sku", "Existing SKU whose history stands in for a new product's.", nullable=True),
            Col(
                "launch_volume",
                "float",
                "Monthly volume at full ramp, for a new product without a like-item.",
                unit="units",
                nullable=True,
                ge=0,
            ),
            text(
                "successor_sku",
                "For a phase-out: the SKU that takes its demand over (planning.supersession has the units moved).",
                nullable=True,
            ),
            Col(
                "ramp_factor",
                "float",
                "Multiplier on the forecast: 0 before launch and from the discontinue month, linear "
                "ramp-up after launch, linear fade before discontinuation.",
                unit="ratio",
                ge=0,
                le=1,
            ),
        ),
        computed_by="sop_pipeline.product.portfolio.build_product_portfolio",
    ),
    Table(
        "product_segmentation",
        "product_review",
        "One row per cycle and SKU of the product master: ABC by revenue, XYZ by demand variability, Syntetos-Boylan "
        "demand class. Decides service levels and which forecast methods fit.",
        ("cycle", "sku"),
        (
            CYCLE,
            SKU,
            FAMILY,
            Col("revenue_12m", "float", "Revenue over the last abc_revenue_window_months months.", unit="money", ge=0),
            Col("revenue_share", "float", "Share of the company's revenue over that window.", unit="ratio", ge=0, le=1),
            text("abc_class", "A = SKUs making the first 80% of revenue, B = the next 15%, C = the rest.", isin=("A", "B", "C")),
            Col(
                "demand_cv",
                "float",
                "Coefficient of variation of monthly units over the segmentation window.",
                unit="ratio",
                nullable=True,
                ge=0,
            ),
            text("xyz_class", "X < 0.5 <= Y < 1.0 <= Z by demand_cv.", isin=("X", "Y", "Z")),
            Col("adi", "float", "Average demand interval: months in the window per month with sales.", unit="months", ge=1),
            Col("cv2", "float", "Squared coefficient of variation of the non-zero monthly sizes.", unit="ratio", ge=0),
            Col(
                "intermittent",
                "bool",
                "Sells in too few months for smoothing models (adi at or above the cut-off): forecast with an intermittent-demand method.",
            ),
            text(
                "demand_class",
                "smooth, erratic, intermittent, lumpy (Syntetos-Boylan), new (too little history) or no_demand.",
                isin=DEMAND_CLASSES,
            ),
            Col("history_months", "int", "Months of history in the window.", unit="months", ge=0),
            Col("nonzero_months", "int", "Months of the window with sales.", unit="months", ge=0),
        ),
        computed_by="sop_pipeline.product.segmentation.segment_products",
    ),
)
