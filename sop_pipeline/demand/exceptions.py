"""Demand-review exceptions for the executive list: the demand-side findings that move money.

Each function returns one row per exception (the columns of `planning.exceptions` that do not
depend on supply scenarios): demand is the same in every scenario, so a demand exception is in
all of them. Money is what the finding puts at stake in the currency of the input files, so
demand, supply and finance findings rank on one list:

* an input (sales, marketing, ...) that moved the statistical forecast by more than the
  override threshold without a reason, and any input inside the frozen window
  (`frozen_months`): the revenue the input moved into or out of the plan;
* a family whose forecast is biased (tracking signal beyond its limit on the consensus's scored
  errors): the revenue of the next 12 months mis-planned if the bias persists;
* a phase-out that takes volume out of a family: the revenue of the run-rate it stops selling
  within the next 12 months;
* an input layer (and owner) that made the forecast worse on the SKU-months it touched in
  earlier cycles: the revenue of the extra error.
"""

from __future__ import annotations

import polars as pl

from sop_pipeline.demand import STATISTICAL
from sop_pipeline.demand.consensus import unexplained_overrides
from sop_pipeline.periods import add_months, cycle_month

CONSENSUS = "consensus"
MONTH_FMT = "%Y-%m"


def _price(products: pl.DataFrame | None) -> pl.DataFrame:
    if products is None or not {"sku", "unit_price"} <= set(products.columns):
        return pl.DataFrame(schema={"sku": pl.Utf8, "unit_price": pl.Float64})
    return products.select("sku", pl.col("unit_price").cast(pl.Float64))


def _span() -> pl.Expr:
    first, last = pl.col("first_month").dt.strftime(MONTH_FMT), pl.col("last_month").dt.strftime(MONTH_FMT)
    return pl.when(first == last).then(first).otherwise(pl.format("{} to {}", first, last))


def _input_rows(moved: pl.DataFrame, products, kind: str, basis: str) -> pl.DataFrame:
    """SKU-month rows an input moved -> one exception per SKU and input layer."""
    per = (
        moved.join(_price(products), on="sku", how="left")
        .with_columns((pl.col("quantity") - pl.col("before")).alias("change"))
        .group_by("sku", "family", "layer", "owner")
        .agg(
            pl.col("month").min().alias("first_month"),
            pl.col("month").max().alias("last_month"),
            pl.len().alias("months"),
            pl.col("before").sum(),
            pl.col("quantity").sum(),
            pl.col("change").sum(),
            (pl.col("change").abs() * pl.col("unit_price").fill_null(0.0)).sum().alias("money"),
        )
    )
    return per.with_columns(
        pl.lit("demand_review").alias("step"),
        pl.lit(kind).alias("kind"),
        pl.format("{}:{}:{}", pl.lit(kind), "sku", "layer").alias("exception_id"),
        pl.lit(basis).alias("money_basis"),
    )


def override_exceptions(
    layers: pl.DataFrame | None,
    statistical: pl.DataFrame | None,
    products: pl.DataFrame | None,
    cycle: str,
    threshold_pct: float,
    frozen_months: int,
    min_money: float,
) -> pl.DataFrame | None:
    """Inputs nobody can explain later, and inputs that change what is already being made.

    An override without a reason is one that moves a SKU-month's statistical forecast by more
    than `threshold_pct` (the rule of the `overrides_have_reasons` check). The frozen window is
    the first `frozen_months` months of the horizon: production for them is scheduled, so any
    change there (reason or not) is a decision for the meeting, not a planning input. Money is
    the revenue the input moved (|change| x unit price), listed from `min_money`."""
    if layers is None or statistical is None or not layers.height:
        return None
    first = cycle_month(cycle)
    frozen_end = add_months(first, frozen_months)
    if not layers.filter(pl.col("layer") != STATISTICAL).height:
        return None
    # The plan before each input: the plan after the layer that acted below it on the SKU-month
    # (the statistical layer is there for every SKU-month).
    staged = (
        layers.sort("sku", "month", "layer_rank")
        .with_columns(pl.col("quantity").shift(1).over("sku", "month").fill_null(0.0).alias("before"))
        .filter(pl.col("layer") != STATISTICAL)
    )
    family = statistical.select("sku", "family").unique("sku")
    staged = staged.join(family, on="sku", how="left")
    parts = []
    unexplained = unexplained_overrides(layers, statistical, threshold_pct).select("sku", "month", "layer")
    if unexplained.height:
        moved = staged.join(unexplained, on=["sku", "month", "layer"], how="semi")
        rows = _input_rows(moved, products, "override_without_reason", "revenue moved into or out of the plan")
        parts.append(
            rows.with_columns(
                pl.format(
                    "{} {}: the {} input ({}) moved {} units ({}%) against the statistical forecast in {} month(s), without a reason{}",
                    "sku",
                    _span(),
                    "layer",
                    "owner",
                    pl.col("change").round(0).cast(pl.Int64),
                    (100 * pl.col("change") / pl.max_horizontal(pl.col("before"), pl.lit(1.0))).round(0).cast(pl.Int64),
                    "months",
                    pl.when(pl.col("first_month") < frozen_end)
                    .then(pl.lit(f", and inside the {frozen_months}-month frozen window"))
                    .otherwise(pl.lit("")),
                ).alias("description"),
                pl.format("{} to give the reason for the {} input on {}, or withdraw it", "owner", "layer", "sku").alias("recommendation"),
            )
        )
    # An unexplained override inside the window is one finding (its sentence says both).
    frozen = staged.filter((pl.col("month") < frozen_end) & (pl.col("quantity") - pl.col("before")).abs().ge(0.5))
    frozen = frozen.join(unexplained, on=["sku", "layer"], how="anti")
    if frozen.height and frozen_months > 0:
        rows = _input_rows(frozen, products, "frozen_window_override", "revenue changed inside the frozen window")
        parts.append(
            rows.with_columns(
                pl.format(
                    "{} {}: the {} input ({}) changes demand by {} units inside the {}-month frozen window, where "
                    "production is already scheduled",
                    "sku",
                    _span(),
                    "layer",
                    "owner",
                    pl.col("change").round(0).cast(pl.Int64),
                    pl.lit(frozen_months),
                ).alias("description"),
                pl.format(
                    "Supply to confirm {} can be made as changed; otherwise {} moves the change past {}",
                    "sku",
                    "owner",
                    pl.lit(f"{add_months(frozen_end, -1):%Y-%m}"),
                ).alias("recommendation"),
            )
        )
    if not parts:
        return None
    return pl.concat(parts, how="diagonal_relaxed").filter(pl.col("money") >= max(min_money, 1e-9))


def bias_exceptions(
    accuracy: pl.DataFrame | None,
    consensus: pl.DataFrame | None,
    products: pl.DataFrame | None,
    cycle: str,
    limit: float,
    min_bias_pct: float,
    min_money: float,
    owner: str,
) -> pl.DataFrame | None:
    """Families whose consensus forecast errs one way: the tracking signal (sum of errors over
    their mean absolute error, Brown's test) beyond +-`limit` on the family-level errors the
    cycle scored (every earlier forecast cycle and lag), and the bias (sum of errors over actual
    units) at least `min_bias_pct`. Errors are forecast - actual at family level, so a positive
    signal is over-forecasting. Money: the family's next 12 months of consensus revenue times
    the bias, the revenue mis-planned if it persists."""
    if accuracy is None or consensus is None or not accuracy.height:
        return None
    scored = accuracy.filter((pl.col("layer") == CONSENSUS) & (pl.col("family") != "ALL") & (pl.col("actual") > 0))
    if not scored.height:
        return None
    signal = (
        scored.with_columns((pl.col("forecast") - pl.col("actual")).alias("error"))
        .group_by("family")
        .agg(
            pl.len().alias("points"),
            pl.col("error").sum().alias("error"),
            pl.col("error").abs().mean().alias("mad"),
            pl.col("actual").sum().alias("actual"),
            pl.col("forecast_cycle").min().alias("since"),
        )
        .with_columns(
            pl.when(pl.col("mad") > 0).then(pl.col("error") / pl.col("mad")).alias("tracking_signal"),
            (100 * pl.col("error") / pl.col("actual")).alias("bias_pct"),
        )
        .filter((pl.col("tracking_signal").abs() >= limit) & (pl.col("bias_pct").abs() >= min_bias_pct))
    )
    if not signal.height:
        return None
    first = cycle_month(cycle)
    ahead = (
        consensus.filter(pl.col("month") < add_months(first, 12))
        .join(_price(products), on="sku", how="left")
        .group_by("family")
        .agg((pl.col("quantity") * pl.col("unit_price").fill_null(0.0)).sum().alias("revenue_12m"))
    )
    rows = signal.join(ahead, on="family", how="left").with_columns(
        (pl.col("revenue_12m").fill_null(0.0) * pl.col("bias_pct").abs() / 100).alias("money")
    )
    over = pl.col("bias_pct") > 0
    return rows.filter(pl.col("money") >= max(min_money, 1e-9)).select(
        pl.format("forecast_bias:{}", "family").alias("exception_id"),
        pl.lit("demand_review").alias("step"),
        pl.lit("forecast_bias").alias("kind"),
        "family",
        pl.lit(first, pl.Date).alias("first_month"),
        pl.lit(add_months(first, 11), pl.Date).alias("last_month"),
        "money",
        pl.lit("next 12 months' revenue mis-planned if the bias persists").alias("money_basis"),
        pl.lit(owner).alias("owner"),
        pl.format(
            "{}: consensus {} by {}% on {} scored family-months since cycle {} (tracking signal {}, limit ±{})",
            "family",
            pl.when(over).then(pl.lit("over-forecast")).otherwise(pl.lit("under-forecast")),
            pl.col("bias_pct").abs().round(1),
            "points",
            "since",
            pl.col("tracking_signal").round(1),
            pl.lit(limit),
        ).alias("description"),
        pl.format(
            "Demand planning to correct the {} forecast ({} consistently) before the next cycle",
            "family",
            pl.when(over).then(pl.lit("too high")).otherwise(pl.lit("too low")),
        ).alias("recommendation"),
    )


def phase_out_exceptions(
    portfolio: pl.DataFrame | None,
    consensus: pl.DataFrame | None,
    sales: pl.DataFrame | None,
    products: pl.DataFrame | None,
    cycle: str,
    min_money: float,
    owner: str,
    supersession: pl.DataFrame | None = None,
) -> pl.DataFrame | None:
    """Families losing volume to phase-outs within the next 12 months. A phasing-out SKU's
    run-rate is its average monthly sales over the 12 closed months before the cycle; what the
    plan no longer sells of it (run-rate - consensus, per month) is the volume lost, and its
    revenue the money (listed from `min_money`; the sentence gives the share of the family's
    volume). A SKU-month whose cut moves to a successor in the same family (`supersession`,
    planning.supersession) loses the family nothing and is left out; a successor in another
    family, or one not selling yet, leaves the loss where it is."""
    if portfolio is None or consensus is None or sales is None or not portfolio.height or not sales.height:
        return None
    first = cycle_month(cycle)
    end = add_months(first, 12)
    leaving = portfolio.filter(pl.col("lifecycle_status").is_in(["phase_out", "discontinued"]) & (pl.col("month") < end))
    skus = leaving["sku"].unique()
    if not skus.len():
        return None
    history = sales.filter((pl.col("month") >= add_months(first, -12)) & (pl.col("month") < first))
    run_rate = history.group_by("sku").agg((pl.col("quantity").sum() / 12).alias("run_rate"))
    family_rate = (
        history.join(consensus.select("sku", "family").unique("sku"), on="sku", how="inner")
        .group_by("family")
        .agg((pl.col("quantity").sum() / 12).alias("family_rate"))
    )
    plan = consensus.filter(pl.col("sku").is_in(skus) & (pl.col("month") < end)).join(run_rate, on="sku", how="inner")
    if supersession is not None and supersession.height:
        taken_over = supersession.filter(pl.col("successor_family") == pl.col("family")).select("sku", "month")
        plan = plan.join(taken_over, on=["sku", "month"], how="anti")
    lost = (
        plan.with_columns((pl.col("run_rate") - pl.col("quantity")).clip(lower_bound=0.0).alias("lost"))
        .join(_price(products), on="sku", how="left")
        .group_by("family")
        .agg(
            pl.col("lost").sum(),
            (pl.col("lost") * pl.col("unit_price").fill_null(0.0)).sum().alias("money"),
            pl.col("sku").unique().sort().alias("skus"),
            pl.col("month").filter(pl.col("lost") > 0).min().alias("first_month"),
        )
        .join(family_rate, on="family", how="left")
        .with_columns((100 * pl.col("lost") / (12 * pl.col("family_rate"))).alias("share_pct"))
        .filter(pl.col("money") >= max(min_money, 1e-9))
    )
    if not lost.height:
        return None
    return lost.select(
        pl.format("phase_out_loss:{}", "family").alias("exception_id"),
        pl.lit("demand_review").alias("step"),
        pl.lit("phase_out_loss").alias("kind"),
        "family",
        pl.col("first_month").fill_null(first),
        pl.lit(add_months(end, -1), pl.Date).alias("last_month"),
        "money",
        pl.lit("next 12 months' revenue of the phased-out run-rate").alias("money_basis"),
        pl.lit(owner).alias("owner"),
        pl.format(
            "{}: phase-outs of {} SKU(s) ({}) take {} units, {}% of the family's run-rate volume, out of the next 12 "
            "months; no successor in the family takes that volume over",
            "family",
            pl.col("skus").list.len(),
            pl.col("skus").list.head(4).list.join(", "),
            pl.col("lost").round(0).cast(pl.Int64),
            pl.col("share_pct").round(0).cast(pl.Int64),
        ).alias("description"),
        pl.format("Product management to name a successor for the {} phase-outs, or accept the volume loss in the budget", "family").alias(
            "recommendation"
        ),
    )


def layer_fva_exceptions(
    points: pl.DataFrame | None, products: pl.DataFrame | None, max_loss_pts: float, min_money: float
) -> pl.DataFrame | None:
    """Input layers that cost accuracy where they acted. FVA pooled over every SKU dilutes a
    layer that touched a few items (a layer that added 11 WAPE points of error on what it
    touched showed as -1.6 over the company), so this compares, on the SKU-months each layer
    and owner actually changed in earlier cycles, the error of the plan after the layer with the
    error of the plan before it. `points`: forecast_cycle, sku, month, layer, owner, before,
    after, actual (closed months only). Listed when the layer lost at least `max_loss_pts` WAPE
    points there; money: the extra absolute error in units x price."""
    if points is None or not points.height:
        return None
    scored = points.join(_price(products), on="sku", how="left").with_columns(
        (pl.col("before") - pl.col("actual")).abs().alias("err_before"),
        (pl.col("after") - pl.col("actual")).abs().alias("err_after"),
    )
    per = (
        scored.group_by("layer", "owner")
        .agg(
            pl.len().alias("points"),
            pl.col("sku").n_unique().alias("skus"),
            pl.col("actual").sum(),
            pl.col("err_before").sum(),
            pl.col("err_after").sum(),
            ((pl.col("err_after") - pl.col("err_before")) * pl.col("unit_price").fill_null(0.0)).sum().alias("money"),
            pl.col("forecast_cycle").min().alias("since"),
            pl.col("month").min().alias("first_month"),
            pl.col("month").max().alias("last_month"),
        )
        .filter(pl.col("actual") > 0)
        .with_columns(
            (100 * pl.col("err_before") / pl.col("actual")).alias("wape_before"),
            (100 * pl.col("err_after") / pl.col("actual")).alias("wape_after"),
        )
        .with_columns((pl.col("wape_before") - pl.col("wape_after")).alias("fva_pts"))
        .filter((pl.col("fva_pts") <= -max_loss_pts) & (pl.col("money") >= max(min_money, 1e-9)))
    )
    if not per.height:
        return None
    return per.select(
        pl.format("layer_fva:{}:{}", "layer", "owner").alias("exception_id"),
        pl.lit("demand_review").alias("step"),
        pl.lit("layer_fva").alias("kind"),
        "first_month",
        "last_month",
        "money",
        pl.lit("revenue of the extra forecast error on the SKU-months the input touched").alias("money_basis"),
        "owner",
        pl.format(
            "the {} input ({}) made the forecast worse where it acted: WAPE {}% after it vs {}% before on {} SKU-months "
            "({} SKUs) of cycles since {} ({} points)",
            "layer",
            "owner",
            pl.col("wape_after").round(1),
            pl.col("wape_before").round(1),
            "points",
            "skus",
            "since",
            pl.col("fva_pts").round(1),
        ).alias("description"),
        pl.format("{} to review how the {} input is made, or leave the statistical forecast alone", "owner", "layer").alias(
            "recommendation"
        ),
    )
