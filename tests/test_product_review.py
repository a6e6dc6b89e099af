"""Unit tests of the product review's rules on small hand-made frames."""

import datetime as dt

import polars as pl
import pytest

from sop_pipeline import registry
from sop_pipeline.product.findings import portfolio_findings
from sop_pipeline.product.portfolio import build_product_portfolio
from sop_pipeline.product.segmentation import segment_products
from sop_pipeline.settings.product import LifecycleSettings, SegmentationSettings

CYCLE = "2026-11"
D = dt.date


def products(**overrides):
    base = {
        "sku": ["A1", "N1", "P1", "OLD"],
        "family": ["F", "F", "F", "F"],
        "status": ["active", "npi", "phase_out", "phase_out"],
        "launch_month": [None, D(2027, 2, 1), None, None],
        "discontinue_month": [None, None, D(2027, 6, 1), D(2026, 9, 1)],
        "like_sku": [None, "A1", None, None],
        "launch_volume": [None, None, None, None],
        "successor_sku": [None, None, None, None],
        "lifetime_quantity": [100.0, 0.0, 50.0, 10.0],
    }
    base.update(overrides)
    return pl.DataFrame(
        base,
        schema_overrides={
            "launch_month": pl.Date,
            "discontinue_month": pl.Date,
            "launch_volume": pl.Float64,
            "like_sku": pl.Utf8,
            "successor_sku": pl.Utf8,
        },
    )


def test_new_product_ramps_up_linearly_from_its_launch_month():
    portfolio = build_product_portfolio(products(), CYCLE, LifecycleSettings(), 24)
    npi = portfolio.filter(pl.col("sku") == "N1").sort("month")
    assert npi["ramp_factor"].head(6).to_list() == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1])
    assert npi["lifecycle_status"].head(6).to_list() == ["pre_launch"] * 3 + ["ramp_up"] * 2 + ["active"]


def test_phase_out_fades_before_and_is_zero_from_the_discontinue_month():
    portfolio = build_product_portfolio(products(), CYCLE, LifecycleSettings(), 24)
    dying = portfolio.filter(pl.col("sku") == "P1").sort("month")
    by_month = dict(zip(dying["month"].to_list(), dying["ramp_factor"].to_list()))
    assert by_month[D(2027, 2, 1)] == 1.0
    assert [by_month[D(2027, m, 1)] for m in (3, 4, 5)] == pytest.approx([0.75, 0.5, 0.25])
    assert by_month[D(2027, 6, 1)] == 0.0 and by_month[D(2028, 10, 1)] == 0.0


def test_products_discontinued_before_the_cycle_leave_the_portfolio():
    portfolio = build_product_portfolio(products(), CYCLE, LifecycleSettings(), 24)
    assert "OLD" not in portfolio["sku"].to_list()
    assert portfolio.height == 3 * 24


def test_portfolio_satisfies_its_schema():
    portfolio = build_product_portfolio(products(), CYCLE, LifecycleSettings(), 24)
    registry.validate("product_portfolio", portfolio)


def test_new_product_without_like_history_or_launch_volume_is_a_finding():
    bad = products(like_sku=[None, "OLD_NEVER_SOLD", None, None])
    findings = portfolio_findings(bad, pl.Series(["A1"]), CYCLE)
    assert findings["sku"].to_list() == ["N1"]
    assert findings["rule"].to_list() == ["new_product_without_basis"]


def test_launch_volume_is_an_acceptable_basis_for_a_new_product():
    ok = products(like_sku=[None, None, None, None], launch_volume=[None, 40.0, None, None])
    assert portfolio_findings(ok, pl.Series(["A1"]), CYCLE).height == 0


def test_sales_for_a_sku_missing_from_the_master_and_inverted_dates_are_findings():
    bad = products(launch_month=[None, D(2027, 2, 1), D(2027, 8, 1), None], like_sku=[None, "A1", "A1", None])
    findings = portfolio_findings(bad, pl.Series(["A1", "GHOST"]), CYCLE)
    assert sorted(zip(findings["rule"], findings["sku"])) == [
        ("phase_out_before_launch", "P1"),
        ("sales_for_unknown_sku", "GHOST"),
    ]


def _sales(series: dict[str, list[float]], price: float = 10.0) -> pl.DataFrame:
    months = [D(2024 + (10 + i) // 12, (10 + i) % 12 + 1, 1) for i in range(24)]
    rows = [(sku, m, q) for sku, qs in series.items() for m, q in zip(months, qs)]
    frame = pl.DataFrame(rows, schema={"sku": pl.Utf8, "month": pl.Date, "quantity": pl.Float64}, orient="row")
    return frame.with_columns((pl.col("quantity") * price).alias("revenue"))


def test_segmentation_ranks_revenue_into_abc_and_variability_into_xyz():
    sales = _sales(
        {
            "BIG": [100.0] * 24,
            "MID": [20.0, 5.0] * 12,
            "SLOW": [0.0, 0.0, 0.0, 3.0] * 6,
            "LUMPY": [0.0, 0.0, 0.0, 1.0, 0.0, 30.0] * 4,
        }
    )
    master = pl.DataFrame({"sku": ["BIG", "MID", "SLOW", "LUMPY"], "family": ["F"] * 4})
    seg = segment_products(master, sales, CYCLE, SegmentationSettings())
    registry.validate("product_segmentation", seg)
    row = {r["sku"]: r for r in seg.iter_rows(named=True)}
    assert row["BIG"]["abc_class"] == "A" and row["BIG"]["xyz_class"] == "X"
    assert row["MID"]["xyz_class"] == "Y"
    assert row["SLOW"]["intermittent"] and row["SLOW"]["demand_class"] == "intermittent"
    assert row["LUMPY"]["demand_class"] == "lumpy"
    assert not row["BIG"]["intermittent"] and row["BIG"]["demand_class"] == "smooth"


def test_skus_with_little_history_are_segmented_as_new():
    sales = _sales({"BIG": [100.0] * 24}).vstack(
        pl.DataFrame(
            {
                "sku": ["YOUNG"] * 3,
                "month": [D(2026, 8, 1), D(2026, 9, 1), D(2026, 10, 1)],
                "quantity": [5.0, 6.0, 7.0],
                "revenue": [50.0, 60.0, 70.0],
            }
        )
    )
    master = pl.DataFrame({"sku": ["BIG", "YOUNG", "NPI"], "family": ["F"] * 3})
    seg = segment_products(master, sales, CYCLE, SegmentationSettings())
    classes = dict(zip(seg["sku"], seg["demand_class"]))
    assert classes["YOUNG"] == "new" and classes["NPI"] == "new"
    registry.validate("product_segmentation", seg)


def test_the_portfolio_spans_the_calendar_horizon_it_is_given():
    for horizon in (18, 36):
        portfolio = build_product_portfolio(products(), CYCLE, LifecycleSettings(), horizon)
        assert portfolio.group_by("sku").len()["len"].unique().to_list() == [horizon]
