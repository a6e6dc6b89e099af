"""One planning calendar: a horizon set once in models/calendar.yaml reaches every step."""

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import CYCLE, q, run_ok

from sop_pipeline.demo import write_demo_company

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.mark.parametrize("horizon", [18, 36])
def test_a_cycle_plans_every_step_over_the_calendar_horizon(tmp_path, horizon):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    calendar = yaml.safe_load((models / "calendar.yaml").read_text())
    calendar["horizon_months"] = horizon
    (models / "calendar.yaml").write_text(yaml.safe_dump(calendar))
    data = tmp_path / "data"
    write_demo_company(data, skus=40, seed=5, cycle=CYCLE, horizon_months=horizon)
    warehouse = tmp_path / "sop.duckdb"
    run_ok(CYCLE, data, warehouse, models_dir=str(models))

    assert q(warehouse, "select count(*) as n from marts.dim_month where period = 'horizon'")["n"][0] == horizon
    for table in ("product_portfolio", "statistical_forecast", "consensus_demand", "inventory_targets", "supply_plan", "financial_plan"):
        months = q(warehouse, f"select count(distinct month) as n from planning.{table} where cycle = '{CYCLE}'")["n"][0]
        assert months == horizon, table
    # A SKU with history has a model's forecast in every horizon month, never a silent zero.
    silent = q(
        warehouse,
        f"""
        select f.sku, f.month from planning.statistical_forecast f
        join planning.product_segmentation s using (cycle, sku)
        where f.cycle = '{CYCLE}' and s.history_months > 0 and f.model = 'no_history'""",
    )
    assert silent.height == 0
