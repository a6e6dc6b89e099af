"""The input contract: which files a company hands over, their columns, types and rules.

One declaration serves three readers: the validator (which turns a broken file into one
clear error before anything is written), the demo-data generator (which must produce exactly
this shape) and the README's data dictionary. Changing a column here changes all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds the validator understands. `month` is a YYYY-MM string; `nonneg` numbers must
# be >= 0; `positive` numbers must be > 0.
STRING = "string"
MONTH = "month"
NUMBER = "number"
NONNEG = "nonneg"
POSITIVE = "positive"
INTEGER = "integer"


# Values the reports use for "every family together": a family may not be called that.
RESERVED = ("ALL",)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    required: bool = True  # a value must be present in every row
    description: str = ""
    allowed: tuple[str, ...] = ()
    maximum: float | None = None  # numbers: the largest value that makes sense
    reserved: tuple[str, ...] = ()  # text: values that would collide with the reports' totals


@dataclass(frozen=True)
class Reference:
    """`column` must exist in `target`.`target_column`, in the rows where `when` (column, value)
    holds (all rows when None): a demand input at level sku names a SKU, at level family a family."""

    column: str
    target: str
    target_column: str
    when: tuple[str, str] | None = None


@dataclass(frozen=True)
class RowRule:
    """A rule across the columns of one row, on typed values: `bad` is a polars expression true
    on a broken row; the message names `column`."""

    column: str
    rule: str
    bad: str  # a key of inputs.validate.ROW_RULES (expressions are built there, on typed frames)


@dataclass(frozen=True)
class InputFile:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required: bool = False
    references: tuple[Reference, ...] = field(default_factory=tuple)
    row_rules: tuple[RowRule, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


LIFECYCLE_STATUSES = ("active", "npi", "phase_out")
ADJUSTMENT_TYPES = ("override", "uplift_pct", "add")
LEVELS = ("sku", "family")
ITEM_TYPES = ("product", "material")

INPUT_FILES: tuple[InputFile, ...] = (
    InputFile(
        "products",
        "Product master: one row per SKU, with its family, price, cost and lifecycle.",
        (
            Column("sku", STRING, description="Stock-keeping unit code, unique."),
            Column("description", STRING, False, "Free-text product name."),
            Column("family", STRING, description="Product family: the level S&OP plans and reports at.", reserved=RESERVED),
            Column("unit_price", NONNEG, description="Current net selling price per unit."),
            Column("unit_cost", NONNEG, description="Standard cost per unit (used when no BOM/routing cost is known)."),
            Column(
                "status", STRING, description="Lifecycle: active, npi (new product introduction) or phase_out.", allowed=LIFECYCLE_STATUSES
            ),
            Column("launch_month", MONTH, False, "First month the SKU sells (YYYY-MM); required for npi."),
            Column("discontinue_month", MONTH, False, "First month the SKU no longer sells (YYYY-MM); required for phase_out."),
            Column("like_sku", STRING, False, "Existing SKU whose history stands in for a new product's."),
            Column("launch_volume", NONNEG, False, "Monthly volume at full ramp for a new product without a usable like_sku."),
            Column(
                "successor_sku",
                STRING,
                False,
                "For a phase-out: the SKU that takes its demand over (supersession). The forecast the phase-out cuts "
                "moves to the successor in every month the successor sells.",
            ),
        ),
        key=("sku",),
        required=True,
        references=(Reference("like_sku", "products", "sku"), Reference("successor_sku", "products", "sku")),
        row_rules=(
            RowRule("launch_month", "a product with status npi needs a launch_month", "npi_without_launch"),
            RowRule("discontinue_month", "a product with status phase_out needs a discontinue_month", "phase_out_without_end"),
            RowRule("discontinue_month", "the discontinue month must be after the launch month", "ends_before_launch"),
            RowRule(
                "like_sku",
                "a new product needs a like_sku that has sales history, a launch_volume, or a phase-out naming it as successor_sku",
                "launch_without_basis",
            ),
            RowRule("successor_sku", "a product cannot be its own successor", "successor_is_itself"),
            RowRule(
                "successor_sku",
                "only a product being phased out can have a successor: it needs a discontinue_month",
                "successor_without_end",
            ),
            RowRule(
                "successor_sku",
                "a successor cannot name a successor of its own: chains are not followed, name the last SKU of the chain",
                "successor_chain",
            ),
            RowRule(
                "successor_sku",
                "a successor must outlive its predecessor: its own discontinue_month, if any, must come later",
                "successor_ends_first",
            ),
            RowRule(
                "successor_sku",
                "a successor's like_sku cannot be its predecessor: the demand would be counted twice (keep one of the two)",
                "successor_like_is_predecessor",
            ),
        ),
    ),
    InputFile(
        "sales_history",
        "Monthly sales (shipments or orders) per SKU. Months without a row count as zero sales.",
        (
            Column("month", MONTH, description="Calendar month, YYYY-MM."),
            Column("sku", STRING, description="SKU sold."),
            Column("quantity", NONNEG, description="Units sold in the month."),
            Column("net_price", NONNEG, False, "Average net price realised in the month (price changes, discounts)."),
            Column("promotion", NONNEG, False, "Share of the month under promotion, 0 to 1.", maximum=1.0),
        ),
        key=("month", "sku"),
        required=True,
        references=(Reference("sku", "products", "sku"),),
    ),
    InputFile(
        "resources",
        "Production resources (lines, work centres) and their monthly capacity.",
        (
            Column("resource", STRING, description="Resource code, unique."),
            Column("plant", STRING, description="Plant the resource belongs to."),
            Column("capacity_hours", NONNEG, description="Regular hours available per month."),
            Column("overtime_hours", NONNEG, description="Extra hours per month available at overtime cost."),
            Column("cost_per_hour", NONNEG, description="Conversion cost per regular hour."),
            Column("overtime_cost_per_hour", NONNEG, description="Cost per overtime hour."),
        ),
        key=("resource",),
    ),
    InputFile(
        "routings",
        "Which resources can make a SKU and how many hours a unit takes; several rows per SKU are alternate routings.",
        (
            Column("sku", STRING, description="SKU produced."),
            Column("resource", STRING, description="Resource that can produce it."),
            Column("hours_per_unit", POSITIVE, description="Resource hours per unit produced."),
            Column("priority", INTEGER, description="1 = preferred routing, higher = alternates."),
        ),
        key=("sku", "resource"),
        references=(Reference("sku", "products", "sku"), Reference("resource", "resources", "resource")),
    ),
    InputFile(
        "materials",
        "Purchased materials: cost, lead time, supplier capacity and stock.",
        (
            Column("material", STRING, description="Material code, unique."),
            Column("description", STRING, False, "Free-text material name."),
            Column("supplier", STRING, description="Supplier delivering the material."),
            Column("unit_cost", NONNEG, description="Purchase cost per unit of material."),
            Column("lead_time_months", INTEGER, description="Months between purchase and receipt.", maximum=60),
            Column("supplier_capacity", NONNEG, description="Most units the supplier can deliver per month."),
            Column("on_hand", NONNEG, description="Units in stock at the start of the cycle."),
        ),
        key=("material",),
    ),
    InputFile(
        "bom",
        "Bill of materials: material units consumed per unit of SKU produced.",
        (
            Column("sku", STRING, description="Finished SKU."),
            Column("material", STRING, description="Component."),
            Column("qty_per", POSITIVE, description="Material units per SKU unit."),
        ),
        key=("sku", "material"),
        references=(Reference("sku", "products", "sku"), Reference("material", "materials", "material")),
    ),
    InputFile(
        "inventory",
        "Finished-goods stock on hand at the start of the cycle.",
        (
            Column("sku", STRING, description="SKU in stock."),
            Column("on_hand", NONNEG, description="Units on hand."),
        ),
        key=("sku",),
        references=(Reference("sku", "products", "sku"),),
    ),
    InputFile(
        "open_supply",
        "Scheduled receipts already committed: production orders (product) and purchase orders (material).",
        (
            Column("item_type", STRING, description="product or material.", allowed=ITEM_TYPES),
            Column("item", STRING, description="SKU or material code."),
            Column("month", MONTH, description="Month the receipt arrives, YYYY-MM."),
            Column("quantity", NONNEG, description="Units arriving."),
        ),
        key=("item_type", "item", "month"),
        references=(
            Reference("item", "products", "sku", ("item_type", "product")),
            Reference("item", "materials", "material", ("item_type", "material")),
        ),
    ),
    InputFile(
        "budget",
        "Annual operating plan by family and month.",
        (
            Column("month", MONTH, description="Budget month, YYYY-MM."),
            Column("family", STRING, description="Product family.", reserved=RESERVED),
            Column("volume", NONNEG, description="Budgeted units."),
            Column("revenue", NONNEG, description="Budgeted revenue."),
            Column("gross_margin", NUMBER, description="Budgeted gross margin (revenue minus cost of goods sold)."),
        ),
        key=("month", "family"),
        references=(Reference("family", "products", "family"),),
    ),
    InputFile(
        "demand_inputs",
        "Consensus layers on top of the statistical forecast: sales and marketing overrides, uplifts and events.",
        (
            Column("layer", STRING, description="Who adds it: sales, marketing, ... Applied in file order of first appearance."),
            Column("level", STRING, description="sku or family.", allowed=LEVELS),
            Column("key", STRING, description="The SKU or family the input applies to.", reserved=RESERVED),
            Column("month", MONTH, description="Month affected, YYYY-MM."),
            Column(
                "adjustment_type",
                STRING,
                description="override (set quantity), uplift_pct (percent change) or add (units added).",
                allowed=ADJUSTMENT_TYPES,
            ),
            Column("value", NUMBER, description="Quantity, percent or units, by adjustment_type."),
            Column("owner", STRING, description="Person accountable for the input."),
            Column("reason", STRING, False, "Why: event, customer, promotion. Large overrides without a reason are flagged."),
        ),
        key=("layer", "level", "key", "month"),
        references=(Reference("key", "products", "sku", ("level", "sku")), Reference("key", "products", "family", ("level", "family"))),
        row_rules=(
            RowRule("value", "an override sets the quantity: it cannot be negative", "negative_override"),
            RowRule("value", "an uplift_pct cannot take demand down by 100% or more", "uplift_below_minus_100"),
        ),
    ),
    InputFile(
        "price_plan",
        "Optional planned price changes: percent change of the product master's unit_price from a month on (family or SKU level).",
        (
            Column("level", STRING, description="sku or family.", allowed=LEVELS),
            Column("key", STRING, description="The SKU or family whose price changes.", reserved=RESERVED),
            Column("month", MONTH, description="First month the change applies, YYYY-MM; it lasts from then on."),
            Column(
                "price_change_pct",
                NUMBER,
                description="Percent change of unit_price (5 = +5%); family and SKU changes multiply, later changes compound.",
            ),
        ),
        key=("level", "key", "month"),
        references=(Reference("key", "products", "sku", ("level", "sku")), Reference("key", "products", "family", ("level", "family"))),
        row_rules=(RowRule("price_change_pct", "a price cannot fall by 100% or more", "price_below_minus_100"),),
    ),
    InputFile(
        "indicators",
        "Optional economic indicators by month, used as covariates by the global forecast model.",
        (
            Column("month", MONTH, description="Month, YYYY-MM."),
            Column("indicator", STRING, description="Indicator name."),
            Column("value", NUMBER, description="Indicator value."),
        ),
        key=("month", "indicator"),
    ),
)

FILES_BY_NAME = {f.name: f for f in INPUT_FILES}
