"""Demand review: lifecycle, consensus layers, checks and accuracy, on hand-made frames and on
real pipeline runs of the small demo company."""

import datetime as dt
import shutil

import polars as pl
import pytest
import yaml
from conftest import CYCLE, EARLIER_CYCLE, q

from sop_pipeline.demand.accuracy import score_accuracy
from sop_pipeline.demand.consensus import build_consensus, consensus_problems, unexplained_overrides
from sop_pipeline.demand.lifecycle import apply_lifecycle
from sop_pipeline.settings.demand import ConsensusSettings
from sop_pipeline.settings.product import LifecycleSettings

D = dt.date
MONTHS = [D(2026, 11, 1), D(2026, 12, 1), D(2027, 1, 1)]


def _portfolio(rows, successors=None):
    """Portfolio rows; `successors` maps a phasing-out SKU to the SKU that takes its demand over."""
    return pl.DataFrame(
        rows,
        schema={
            "cycle": pl.Utf8,
            "sku": pl.Utf8,
            "family": pl.Utf8,
            "month": pl.Date,
            "lifecycle_status": pl.Utf8,
            "like_sku": pl.Utf8,
            "launch_volume": pl.Float64,
            "ramp_factor": pl.Float64,
        },
        orient="row",
    ).with_columns(pl.col("sku").replace_strict(successors or {}, default=None, return_dtype=pl.Utf8).alias("successor_sku"))


def _base(sku, p50):
    return pl.DataFrame(
        {"sku": [sku] * 3, "month": MONTHS, "model": ["ets"] * 3, "p10": [v * 0.8 for v in p50], "p50": p50, "p90": [v * 1.2 for v in p50]}
    )


def test_new_product_borrows_its_like_items_forecast_scaled_by_the_ramp_and_phase_out_reaches_zero():
    portfolio = _portfolio(
        [(CYCLE, "OLD", "F", m, "active", None, None, 1.0) for m in MONTHS]
        + [(CYCLE, "NEW", "F", m, s, "OLD", None, r) for m, s, r in zip(MONTHS, ["pre_launch", "ramp_up", "active"], [0.0, 0.5, 1.0])]
        + [(CYCLE, "VOL", "F", m, "ramp_up", None, 30.0, 1.0) for m in MONTHS]
        + [
            (CYCLE, "DIE", "F", m, s, None, None, r)
            for m, s, r in zip(MONTHS, ["phase_out", "discontinued", "discontinued"], [0.5, 0.0, 0.0])
        ]
    )
    base = pl.concat([_base("OLD", [100.0, 120.0, 140.0]), _base("DIE", [50.0, 50.0, 50.0])])
    out, moves = apply_lifecycle(base, portfolio, LifecycleSettings())
    assert moves.height == 0
    by = {(r["sku"], r["month"]): r for r in out.iter_rows(named=True)}
    assert [by[("NEW", m)]["p50"] for m in MONTHS] == pytest.approx([0.0, 60.0, 140.0])
    assert by[("NEW", MONTHS[2])]["model"] == "like:OLD:ets"
    assert [by[("VOL", m)]["p50"] for m in MONTHS] == pytest.approx([30.0] * 3)
    assert [by[("DIE", m)]["p50"] for m in MONTHS] == pytest.approx([25.0, 0.0, 0.0])
    assert out.height == 12


def test_a_phase_outs_cut_moves_to_its_successor_in_the_months_the_successor_sells():
    """DIE (50 a month, p10 40, p90 60) fades to half in November and is gone from December;
    its successor NEW launches from a 30-unit launch volume: not yet selling in November, half
    ramp in December, full in January. November's cut (25) is lost, since NEW does not sell yet;
    December and January move DIE's whole 50 (band 40 to 60) onto NEW."""
    portfolio = _portfolio(
        [(CYCLE, "DIE", "F", m, s, None, None, r) for m, s, r in zip(MONTHS, ["phase_out", "discontinued", "discontinued"], [0.5, 0, 0])]
        + [(CYCLE, "NEW", "F", m, s, None, 30.0, r) for m, s, r in zip(MONTHS, ["pre_launch", "ramp_up", "active"], [0.0, 0.5, 1.0])],
        successors={"DIE": "NEW"},
    )
    out, moves = apply_lifecycle(_base("DIE", [50.0, 50.0, 50.0]), portfolio, LifecycleSettings())
    by = {(r["sku"], r["month"]): r for r in out.iter_rows(named=True)}
    assert [by[("DIE", m)]["p50"] for m in MONTHS] == pytest.approx([25.0, 0.0, 0.0])
    assert [by[("NEW", m)]["p50"] for m in MONTHS] == pytest.approx([0.0, 15.0 + 50.0, 30.0 + 50.0])
    # launch band 0.7-1.3 of the launch volume, plus DIE's 40-60
    assert [by[("NEW", m)]["p10"] for m in MONTHS] == pytest.approx([0.0, 10.5 + 40.0, 21.0 + 40.0])
    assert [by[("NEW", m)]["p90"] for m in MONTHS] == pytest.approx([0.0, 19.5 + 60.0, 39.0 + 60.0])
    assert moves.select("sku", "successor_sku", "month", "forecast_units", "kept_units", "moved_units").rows() == [
        ("DIE", "NEW", MONTHS[1], 50.0, 0.0, 50.0),
        ("DIE", "NEW", MONTHS[2], 50.0, 0.0, 50.0),
    ]
    assert by[("NEW", MONTHS[2])]["model"] == "launch_volume"


def _statistical():
    return pl.DataFrame(
        {
            "cycle": [CYCLE] * 6,
            "sku": ["A", "A", "A", "B", "B", "B"],
            "family": ["F"] * 6,
            "month": MONTHS * 2,
            "model": ["ets"] * 6,
            "p10": [80.0, 80.0, 80.0, 24.0, 24.0, 24.0],
            "p50": [100.0] * 3 + [30.0] * 3,
            "p90": [120.0] * 3 + [36.0] * 3,
        }
    )


def _inputs(rows):
    return pl.DataFrame(
        rows,
        schema={
            "layer": pl.Utf8,
            "level": pl.Utf8,
            "key": pl.Utf8,
            "month": pl.Date,
            "adjustment_type": pl.Utf8,
            "value": pl.Float64,
            "owner": pl.Utf8,
            "reason": pl.Utf8,
        },
        orient="row",
    )


def test_family_inputs_split_by_forecast_share_and_sku_inputs_apply_on_top_in_layer_order():
    inputs = _inputs(
        [
            ("marketing", "sku", "A", MONTHS[0], "add", 10.0, "Mia (Marketing)", "launch event"),
            ("sales", "family", "F", MONTHS[0], "override", 260.0, "Ana (Sales)", "customer forecast"),
            ("sales", "family", "F", MONTHS[1], "uplift_pct", 10.0, "Ana (Sales)", "price promotion"),
        ]
    )
    layers, consensus = build_consensus(_statistical(), inputs, CYCLE, ConsensusSettings())
    c = {(r["sku"], r["month"]): r for r in consensus.iter_rows(named=True)}
    # family override of 260 over shares 100:30, then marketing adds 10 units to A
    assert c[("A", MONTHS[0])]["quantity"] == pytest.approx(200.0 + 10.0)
    assert c[("B", MONTHS[0])]["quantity"] == pytest.approx(60.0)
    assert c[("A", MONTHS[1])]["quantity"] == pytest.approx(110.0) and c[("B", MONTHS[1])]["quantity"] == pytest.approx(33.0)
    assert c[("A", MONTHS[2])]["quantity"] == pytest.approx(100.0)
    # the band scales with the consensus
    assert c[("B", MONTHS[0])]["p10"] == pytest.approx(48.0) and c[("B", MONTHS[0])]["p90"] == pytest.approx(72.0)
    assert layers["layer"].unique(maintain_order=True).to_list() == ["statistical", "sales", "marketing"]
    mkt = layers.filter(pl.col("layer") == "marketing").row(0, named=True)
    assert (mkt["sku"], mkt["quantity"], mkt["adjustment"], mkt["owner"], mkt["reason"]) == (
        "A",
        210.0,
        10.0,
        "Mia (Marketing)",
        "launch event",
    )


def test_large_change_without_reason_is_listed_and_one_with_a_reason_is_not():
    inputs = _inputs(
        [
            ("sales", "sku", "A", MONTHS[0], "override", 300.0, "Ana (Sales)", None),
            ("sales", "sku", "B", MONTHS[0], "override", 90.0, "Ana (Sales)", "tender won"),
            ("sales", "sku", "B", MONTHS[1], "override", 33.0, "Ana (Sales)", None),
        ]
    )
    layers, _ = build_consensus(_statistical(), inputs, CYCLE, ConsensusSettings())
    flagged = unexplained_overrides(layers, _statistical(), 50.0)
    assert flagged.select("sku", "month").rows() == [("A", MONTHS[0])]


def test_consensus_problems_catch_missing_months_and_negative_values():
    _, consensus = build_consensus(_statistical(), _inputs([]), CYCLE, ConsensusSettings())
    portfolio = _statistical().select("sku", "month")
    assert consensus_problems(consensus, portfolio).height == 0
    broken = consensus.with_columns(pl.when(pl.col("sku") == "B").then(-1.0).otherwise(pl.col("quantity")).alias("quantity"))
    broken = broken.filter(~((pl.col("sku") == "A") & (pl.col("month") == MONTHS[2])))
    problems = consensus_problems(broken, portfolio)
    assert "missing SKU-month" in problems["problem"].to_list()
    assert problems.filter(pl.col("sku") == "B").height >= 3


def test_accuracy_scores_each_layer_by_lag_against_actuals_and_seasonal_naive():
    layers = pl.DataFrame(
        {
            "cycle": ["2026-09"] * 4,
            "sku": ["A", "A", "A", "A"],
            "month": [D(2026, 9, 1), D(2026, 10, 1)] * 2,
            "layer": ["statistical", "statistical", "sales", "sales"],
            "layer_rank": [0, 0, 1, 1],
            "quantity": [80.0, 100.0, 100.0, 150.0],
            "adjustment": [0.0, 0.0, 20.0, 50.0],
            "owner": ["m", "m", "s", "s"],
            "reason": ["ets", "ets", "x", "y"],
            "input_level": ["sku"] * 4,
        }
    )
    actuals = pl.DataFrame(
        {"sku": ["A"] * 4, "month": [D(2025, 9, 1), D(2025, 10, 1), D(2026, 9, 1), D(2026, 10, 1)], "quantity": [90.0, 90.0, 100.0, 100.0]}
    )
    products = pl.DataFrame({"sku": ["A"], "family": ["F"]})
    acc = score_accuracy(layers, actuals, products, CYCLE)
    row = {(r["layer"], r["lag"]): r for r in acc.filter(pl.col("family") == "ALL").iter_rows(named=True)}
    assert row[("statistical", 1)]["wape"] == pytest.approx(0.2)  # 80 vs 100
    assert row[("sales", 1)]["wape"] == pytest.approx(0.0)
    assert row[("sales", 1)]["fva_vs_statistical"] == pytest.approx(0.2)  # sales added 20 points at lag 1
    assert row[("sales", 2)]["fva_vs_statistical"] == pytest.approx(-0.5)  # and destroyed 50 at lag 2
    assert row[("statistical", 1)]["mase"] == pytest.approx(20.0 / 10.0)  # naive (last year's 90) erred by 10
    assert row[("consensus", 2)]["bias"] == pytest.approx(0.5)
    assert set(acc["cycle"]) == {CYCLE}


# --- on real pipeline runs -----------------------------------------------------------------


def test_statistical_forecast_and_consensus_cover_every_portfolio_sku_and_month(cycle_warehouse):
    for table in ("statistical_forecast", "consensus_demand"):
        missing = q(
            cycle_warehouse,
            f"""
            select p.sku, p.month from planning.product_portfolio p
            anti join planning.{table} t on t.cycle = p.cycle and t.sku = p.sku and t.month = p.month
            where p.cycle = '{CYCLE}'""",
        )
        assert missing.height == 0, table
    consensus = q(cycle_warehouse, f"select * from planning.consensus_demand where cycle = '{CYCLE}'")
    assert (consensus["quantity"] >= 0).all() and consensus["quantity"].is_finite().all()
    assert ((consensus["p10"] <= consensus["quantity"]) & (consensus["quantity"] <= consensus["p90"])).all()


def test_pipeline_gives_new_products_their_like_items_forecast_and_zeroes_phase_outs(cycle_warehouse):
    rows = q(
        cycle_warehouse,
        f"""
        select p.sku, p.month, p.lifecycle_status, p.like_sku, p.ramp_factor, f.p50, f.model, l.p50 as like_p50,
            coalesce(m.moved, 0) as moved
        from planning.product_portfolio p
        join planning.statistical_forecast f using (cycle, sku, month)
        left join planning.statistical_forecast l on l.cycle = p.cycle and l.sku = p.like_sku and l.month = p.month
        left join (
            select cycle, successor_sku as sku, month, sum(moved_units) as moved from planning.supersession group by all
        ) m on m.cycle = p.cycle and m.sku = p.sku and m.month = p.month
        where p.cycle = '{CYCLE}'""",
    )
    launches = rows.filter(pl.col("like_sku").is_not_null() & pl.col("like_p50").is_not_null())
    assert launches.height > 0 and launches["moved"].max() > 0  # the demo's successor is a launch from a like-item
    assert (launches["p50"] - launches["moved"] - launches["like_p50"] * launches["ramp_factor"]).abs().max() < 1e-6
    assert launches.filter(pl.col("lifecycle_status") == "pre_launch")["p50"].max() == 0
    gone = rows.filter(pl.col("lifecycle_status") == "discontinued")
    assert gone.height > 0 and gone["p50"].max() == 0


def test_layers_keep_owner_and_reason_and_the_unexplained_override_is_flagged(cycle_warehouse, demo_dir):
    layers = q(cycle_warehouse, f"select * from planning.demand_plan_layers where cycle = '{CYCLE}'")
    inputs = layers.filter(pl.col("layer") != "statistical")
    assert set(inputs["layer"]) == {"sales", "marketing"}
    assert inputs["owner"].null_count() == 0
    raw = pl.read_csv(demo_dir / "demand_inputs.csv", infer_schema=False)
    no_reason = raw.filter(pl.col("reason").is_null() & (pl.col("month") >= CYCLE))["key"].to_list()
    assert set(inputs.filter(pl.col("reason").is_null())["sku"]) <= set(no_reason)


def test_forecast_accuracy_scores_the_earlier_cycle_per_layer_with_value_added(cycle_warehouse):
    acc = q(cycle_warehouse, f"select * from planning.forecast_accuracy where cycle = '{CYCLE}' and family = 'ALL'")
    assert set(acc["forecast_cycle"]) == {EARLIER_CYCLE}
    lag1 = acc.filter(pl.col("lag") == 1)
    assert {"statistical", "sales", "consensus"} <= set(lag1["layer"])
    assert lag1["wape"].is_finite().all() and lag1["mase"].is_finite().all()
    # Worked out independently from the stored forecast and the actuals: the earlier cycle's
    # statistical forecast of its own first month against what sold then, and against the
    # seasonal naive forecast (what sold a year before).
    month = f"{EARLIER_CYCLE}-01"
    truth = q(
        cycle_warehouse,
        f"""
        with f as (select sku, quantity as forecast from planning.demand_plan_layers
                   where cycle = '{EARLIER_CYCLE}' and layer = 'statistical' and month = date '{month}'),
             a as (select sku, quantity as actual from marts.fct_sales_monthly where month = date '{month}'),
             n as (select sku, quantity as naive from marts.fct_sales_monthly where month = date '{month}' - interval 12 month)
        select sum(abs(f.forecast - coalesce(a.actual, 0))) / sum(coalesce(a.actual, 0)) as wape,
               sum(abs(coalesce(n.naive, 0) - coalesce(a.actual, 0))) / sum(coalesce(a.actual, 0)) as naive_wape
        from f left join a using (sku) left join n using (sku)""",
    ).row(0, named=True)
    stat = lag1.filter(pl.col("layer") == "statistical").row(0, named=True)
    assert stat["wape"] == pytest.approx(truth["wape"]) and stat["naive_wape"] == pytest.approx(truth["naive_wape"])
    assert stat["fva_vs_statistical"] == 0
    assert stat["fva_vs_naive"] == pytest.approx(truth["naive_wape"] - truth["wape"])


def test_backtest_keeps_every_candidates_error_per_sku_and_the_chart_is_written(cycle_warehouse):
    bt = q(cycle_warehouse, f"select * from planning.forecast_backtest where cycle = '{CYCLE}'")
    per_sku = bt.group_by("sku").agg(pl.col("model").n_unique().alias("models"), pl.col("published").sum().alias("published"))
    assert per_sku["models"].max() >= 5
    assert {"seasonal_naive", "ets", "theta"} <= set(bt["model"])
    assert (per_sku["published"] <= 1).all()
    assert (cycle_warehouse.parent / "charts" / CYCLE / "demand_top_families.png").stat().st_size > 10_000


def test_family_p50_is_the_sum_of_its_sku_p50s_and_the_total_is_every_skus(cycle_warehouse):
    """Coherence on a real run: planning.family_forecast's p50 against sums worked out here from
    planning.statistical_forecast (family ALL = every SKU)."""
    check = q(
        cycle_warehouse,
        f"""
        with skus as (select family, month, sum(p50) as p50 from planning.statistical_forecast where cycle = '{CYCLE}' group by all
                      union all
                      select 'ALL', month, sum(p50) from planning.statistical_forecast where cycle = '{CYCLE}' group by all)
        select s.family, s.month, s.p50 as sku_sum, f.p50 as family_p50
        from skus s full join (select * from planning.family_forecast where cycle = '{CYCLE}') f using (family, month)""",
    )
    assert check.height == q(cycle_warehouse, f"select count(*) as n from planning.family_forecast where cycle = '{CYCLE}'")["n"][0]
    assert check["sku_sum"].null_count() == 0 and check["family_p50"].null_count() == 0
    assert ((check["sku_sum"] - check["family_p50"]).abs() <= 1e-6 * (1 + check["sku_sum"].abs())).all()
    assert "ALL" in set(check["family"]) and check["family"].n_unique() >= 4


def test_family_bands_cover_about_80_percent_of_family_backtest_actuals_and_are_not_summed_sku_bands(cycle_warehouse):
    """The family band is the family's own: its p10-p90 holds about 80% of the family's
    backtest actuals (each origin's band fitted without that origin), and it is narrower than
    the SKU bands added up, since SKU errors partly cancel in the family."""
    bt = q(cycle_warehouse, f"select * from planning.family_forecast_backtest where cycle = '{CYCLE}'")
    assert bt.height >= 100
    inside = ((bt["actual"] >= bt["p10"]) & (bt["actual"] <= bt["p90"])).mean()
    assert 0.70 <= inside <= 0.90, inside
    # the family backtest adds up the SKUs' published backtest, worked out from another table
    published = q(
        cycle_warehouse, f"select sum(actual) as a, sum(points) as n from planning.forecast_backtest where cycle = '{CYCLE}' and published"
    ).row(0, named=True)
    total = bt.filter(pl.col("family") == "ALL")
    assert total["actual"].sum() == pytest.approx(published["a"])
    assert total["skus"].sum() == published["n"]
    assert bt.filter(pl.col("family") != "ALL")["actual"].sum() == pytest.approx(published["a"])
    widths = q(
        cycle_warehouse,
        f"""
        select f.family, f.month, f.p90 - f.p10 as family_width, s.summed_width
        from planning.family_forecast f
        join (select family, month, sum(p90 - p10) as summed_width from planning.statistical_forecast
              where cycle = '{CYCLE}' group by all) s using (family, month)
        where f.cycle = '{CYCLE}' and s.summed_width > 0""",
    )
    assert widths.height > 0 and (widths["family_width"] < widths["summed_width"]).all()


def test_the_gate_and_metrics_use_the_published_forecasts_nested_backtest(cycle_warehouse):
    """One `published` row per forecast SKU in planning.forecast_backtest: the published
    forecast's own backtest, weighted at each origin on earlier months only."""
    bt = q(cycle_warehouse, f"select * from planning.forecast_backtest where cycle = '{CYCLE}'")
    pub = bt.filter(pl.col("published"))
    assert pub.height > 0 and (pub["model"] == "published").all() and pub["sku"].is_unique().all()
    # a regular SKU publishes the ensemble, whose stored backtest is the nested one; a slow
    # mover TSB (chosen by its segment, not by its error)
    same = pub.join(bt.filter(pl.col("model").is_in(["ensemble", "tsb"])), on=["sku", "points"], suffix="_model").filter(
        (pl.col("abs_error") - pl.col("abs_error_model")).abs() <= 1e-9
    )
    assert same["sku"].n_unique() == pub.height
    assert {"ensemble", "tsb"} == set(same["model_model"])


def test_broken_demand_inputs_stop_the_cycle_and_leave_earlier_cycles_unchanged(data_copy, warehouse_copy):
    from conftest import warehouse_fingerprint

    from orchestration.runner import run_cycle

    frame = pl.read_csv(data_copy / "demand_inputs.csv", infer_schema=False)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("double_it")).otherwise(pl.col("adjustment_type")).alias("adjustment_type")
    ).write_csv(data_copy / "demand_inputs.csv")
    before = warehouse_fingerprint(warehouse_copy)
    outcome = run_cycle(CYCLE, str(data_copy), str(warehouse_copy), printer=lambda _: None)
    assert not outcome.success
    assert "demand_inputs.csv, column 'adjustment_type', row 3: must be one of override, uplift_pct, add" in outcome.explanation()
    assert warehouse_fingerprint(warehouse_copy) == before


def test_consensus_checkpoint_blocks_when_statistics_lose_to_naive_beyond_the_gate(tmp_path, demo_dir, warehouse_copy):
    from orchestration.paths import default_models_dir
    from orchestration.runner import run_cycle

    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models)
    gates = yaml.safe_load((models / "gates.yaml").read_text())
    gates["demand_review"]["max_backtest_ratio_to_naive"] = 0.01  # no forecast is 100x better than naive
    (models / "gates.yaml").write_text(yaml.safe_dump(gates))
    outcome = run_cycle(CYCLE, str(demo_dir), str(warehouse_copy), models_dir=str(models), printer=lambda _: None)
    assert not outcome.success
    assert "consensus_demand_is_sound" in outcome.explanation() and "worse than seasonal naive" in outcome.explanation()
    assert "planning/forecast_accuracy" not in outcome.materialized  # downstream of the failed checkpoint


def test_a_sku_with_history_but_no_forecast_in_a_month_is_a_consensus_problem():
    statistical = _statistical().with_columns(
        pl.when((pl.col("sku") == "B") & (pl.col("month") == MONTHS[2]))
        .then(pl.lit("no_history"))
        .otherwise(pl.col("model"))
        .alias("model"),
        pl.when((pl.col("sku") == "B") & (pl.col("month") == MONTHS[2])).then(0.0).otherwise(pl.col("p50")).alias("p50"),
    )
    _, consensus = build_consensus(statistical, _inputs([]), CYCLE, ConsensusSettings())
    portfolio = statistical.select("sku", "month")
    problems = consensus_problems(consensus, portfolio, statistical, pl.Series(["A", "B"]))
    assert problems.select("sku", "month", "problem").rows() == [("B", MONTHS[2], "SKU with sales history has no statistical forecast")]
    # a new product without any basis is not that: it never sold
    assert consensus_problems(consensus, portfolio, statistical, pl.Series(["A"])).height == 0
