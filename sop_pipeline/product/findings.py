"""The portfolio checkpoint's rules: what makes a portfolio unsound to plan."""

from __future__ import annotations

import polars as pl

from sop_pipeline.periods import cycle_month


def portfolio_findings(products: pl.DataFrame, sales_skus: pl.Series, cycle: str) -> pl.DataFrame:
    """Every SKU that breaks a portfolio rule, with the rule and the detail a planner needs.

    Rules: every SKU with sales exists in the product master; every product launching in the
    horizon has a like_sku with history, an explicit launch_volume or a predecessor whose demand
    it takes over (successor_sku); a discontinue month falls
    after the launch month. An empty frame means the portfolio is sound.
    """
    start = cycle_month(cycle)
    history = products.filter(pl.col("lifetime_quantity") > 0).select(
        pl.col("sku").alias("like_sku"), pl.lit(True).alias("like_has_history")
    )
    unknown = (
        pl.DataFrame({"sku": sales_skus.unique().sort()})
        .join(products.select("sku"), on="sku", how="anti")
        .with_columns(
            pl.lit("sales_for_unknown_sku").alias("rule"),
            pl.lit("has sales history but is not in the product master").alias("detail"),
        )
    )
    launching = products.filter(
        (pl.col("status") == "npi") | (pl.col("launch_month").is_not_null() & (pl.col("launch_month") >= pl.lit(start)))
    ).join(history, on="like_sku", how="left")
    succeeding = products["successor_sku"].drop_nulls().unique().implode()
    no_basis = launching.filter(
        pl.col("like_has_history").is_null() & pl.col("launch_volume").is_null() & ~pl.col("sku").is_in(succeeding)
    ).select(
        "sku",
        pl.lit("new_product_without_basis").alias("rule"),
        pl.format(
            "launches {} with like_sku {} that has no sales history, no launch_volume and no predecessor naming it as successor_sku",
            pl.col("launch_month").dt.strftime("%Y-%m").fill_null("(no month)"),
            pl.col("like_sku").fill_null("(none)"),
        ).alias("detail"),
    )
    bad_dates = products.filter(
        pl.col("launch_month").is_not_null()
        & pl.col("discontinue_month").is_not_null()
        & (pl.col("discontinue_month") <= pl.col("launch_month"))
    ).select(
        "sku",
        pl.lit("phase_out_before_launch").alias("rule"),
        pl.format(
            "discontinue month {} is not after launch month {}",
            pl.col("discontinue_month").dt.strftime("%Y-%m"),
            pl.col("launch_month").dt.strftime("%Y-%m"),
        ).alias("detail"),
    )
    return pl.concat([unknown, no_basis, bad_dates], how="vertical").sort("rule", "sku")


def describe_findings(findings: pl.DataFrame, source_rows: pl.DataFrame | None = None, limit: int = 20) -> str:
    """A planner-readable summary: one line per offending SKU (the first `limit`), naming the
    input file and row to fix. `source_rows` maps (`sku`, `file`) to the `row` of that file
    where the SKU is (from the staging tables' `_source_row`)."""
    if findings.height == 0:
        return "portfolio is sound"
    where = {}
    if source_rows is not None:
        where = {(r["file"], r["sku"]): r["row"] for r in source_rows.iter_rows(named=True)}
    lines = []
    for row in findings.head(limit).iter_rows(named=True):
        file = "sales_history.csv" if row["rule"] == "sales_for_unknown_sku" else "products.csv"
        at = where.get((file, row["sku"]))
        lines.append(f"{file}{f', row {at}' if at is not None else ''}, sku {row['sku']}: {row['rule']} - {row['detail']}")
    more = f"\n... and {findings.height - limit} more" if findings.height > limit else ""
    return "\n".join(lines) + more
