"""Supersession (products.csv `successor_sku`) on real pipeline runs of a five-SKU company.

The company: family Heat holds A (active) and P, which is discontinued in 2027-02 and names S as
its successor; S is a new product launched in the cycle month from a launch volume of 40 a
month. Family Cool holds B (active) and Q, discontinued in 2027-03 with no successor. The
cycle is 2026-11; the phase-out ramp is the default three months, so P's forecast keeps
3/4, 2/4 and 1/4 of itself in November, December and January and nothing from February; S
reaches its launch volume over three months (1/3, 2/3, then all of it) and sells from November.

The company is run twice, on identical files but for P's lifecycle: once with the supersession
and once with P active (no discontinue month, no successor). The second run's forecast of P is
what the pipeline forecasts P would sell: what the first run must cut from P and add to S,
month by month. A third run has P phase out with no successor: the control that shows its
family's phase-out exception exists when no successor takes the volume over.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import q, run_ok

from sop_pipeline.inputs.validate import InputError, validate_inputs

CYCLE = "2026-11"
MONTHS = [dt.date(2026 + (10 + i) // 12, (10 + i) % 12 + 1, 1) for i in range(24)]  # 2026-11 .. 2028-10
KEPT = [0.75, 0.5, 0.25] + [0.0] * 21  # P's share of its forecast in each month (3-month fade to 2027-02)
S_RAMP = [1 / 3, 2 / 3] + [1.0] * 22  # S's launch ramp from 2026-11
LAUNCH_VOLUME = 40.0
SEASON = [100, 92, 108, 97, 103, 110, 95, 100, 105, 90, 101, 99]
LEVEL = {"A": 1.0, "P": 0.8, "B": 0.6, "Q": 1.2}
PRICE = {"A": 100.0, "P": 90.0, "S": 110.0, "B": 50.0, "Q": 60.0}
FAMILY = {"A": "Heat", "P": "Heat", "S": "Heat", "B": "Cool", "Q": "Cool"}


def _months(first: str, count: int) -> list[str]:
    y, m = map(int, first.split("-"))
    return [f"{(y * 12 + m - 1 + i) // 12:04d}-{(y * 12 + m - 1 + i) % 12 + 1:02d}" for i in range(count)]


def _products(p_phases_out: bool = True, p_successor: str | None = "S") -> pl.DataFrame:
    skus = list(FAMILY)
    return pl.DataFrame(
        {
            "sku": skus,
            "family": [FAMILY[s] for s in skus],
            "unit_price": [PRICE[s] for s in skus],
            "unit_cost": [0.6 * PRICE[s] for s in skus],
            "status": ["active", "phase_out" if p_phases_out else "active", "npi", "active", "phase_out"],
            "launch_month": [None, None, CYCLE, None, None],
            "discontinue_month": [None, "2027-02" if p_phases_out else None, None, None, "2027-03"],
            "launch_volume": [None, None, LAUNCH_VOLUME, None, None],
            "successor_sku": [None, p_successor, None, None, None],
        },
        schema_overrides={"launch_month": pl.String, "discontinue_month": pl.String, "successor_sku": pl.String},
    )


def _company(folder: Path, products: pl.DataFrame) -> Path:
    """Three years of seasonal, growing sales for A, P, B and Q to 2026-10; one line makes all."""
    folder.mkdir(parents=True, exist_ok=True)
    sold = [s for s in FAMILY if s != "S"]
    history = [
        (month, sku, round(SEASON[i % 12] * LEVEL[sku] * (1 + 0.03 * (i // 12)) + (i * 7 + len(sku)) % 9))
        for i, month in enumerate(_months("2023-11", 36))
        for sku in sold
    ]
    frames = {
        "products": products,
        "sales_history": pl.DataFrame(history, schema={"month": pl.String, "sku": pl.String, "quantity": pl.Int64}, orient="row"),
        "resources": pl.DataFrame(
            {
                "resource": ["R1"],
                "plant": ["P1"],
                "capacity_hours": [1000.0],
                "overtime_hours": [0.0],
                "cost_per_hour": [40.0],
                "overtime_cost_per_hour": [60.0],
            }
        ),
        "routings": pl.DataFrame({"sku": list(FAMILY), "resource": ["R1"] * 5, "hours_per_unit": [0.5] * 5, "priority": [1] * 5}),
        "materials": pl.DataFrame(
            {
                "material": ["M1"],
                "supplier": ["S1"],
                "unit_cost": [10.0],
                "lead_time_months": [0],
                "supplier_capacity": [100000],
                "on_hand": [100000],
            }
        ),
        "bom": pl.DataFrame({"sku": list(FAMILY), "material": ["M1"] * 5, "qty_per": [1.0] * 5}),
        "inventory": pl.DataFrame({"sku": sold, "on_hand": [50.0] * 4}),
    }
    for name, frame in frames.items():
        frame.write_csv(folder / f"{name}.csv")
    return folder


def _models(folder: Path) -> Path:
    from orchestration.paths import default_models_dir

    shutil.copytree(default_models_dir(), folder)
    (folder / "scenarios.yaml").write_text("scenarios: {}\n")  # the default file names the demo company's families
    gates = yaml.safe_load((folder / "gates.yaml").read_text())
    gates["demand_review"]["max_backtest_ratio_to_naive"] = 100.0  # the test is about the transfer, not the forecast
    gates["supply_review"]["fill_rate_target"] = 0.0
    gates["executive_review"]["materiality"]["demand_money"] = 1.0
    (folder / "gates.yaml").write_text(yaml.safe_dump(gates))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("supersession")
    models = _models(root / "models")
    variants = {
        "superseded": _products(),
        "p_active": _products(p_phases_out=False, p_successor=None),
        "no_successor": _products(p_successor=None),
    }
    warehouses = {}
    for name, products in variants.items():
        warehouses[name] = root / name / "sop.duckdb"
        run_ok(CYCLE, _company(root / name / "data", products), warehouses[name], models_dir=str(models))
    return warehouses


def _demand(warehouse: Path, sku: str) -> list[float]:
    frame = q(warehouse, f"select month, quantity from planning.consensus_demand where cycle = '{CYCLE}' and sku = '{sku}' order by month")
    assert frame["month"].to_list() == MONTHS
    return frame["quantity"].to_list()


def test_the_phase_outs_cut_moves_to_its_successor_month_by_month(runs):
    would_sell = _demand(runs["p_active"], "P")  # the pipeline's forecast of P had it not been phased out
    assert min(would_sell) > 10
    moved = [f * (1 - k) for f, k in zip(would_sell, KEPT)]
    assert _demand(runs["superseded"], "P") == pytest.approx([f * k for f, k in zip(would_sell, KEPT)], abs=1e-6)
    s_alone = [LAUNCH_VOLUME * r for r in S_RAMP]
    assert _demand(runs["p_active"], "S") == pytest.approx(s_alone, abs=1e-6)
    assert _demand(runs["superseded"], "S") == pytest.approx([a + m for a, m in zip(s_alone, moved)], abs=1e-6)
    # Heat's total is what it would be with P still selling, less nothing: the volume only moved
    # (S's own launch is in both).
    heat = [p + s for p, s in zip(_demand(runs["superseded"], "P"), _demand(runs["superseded"], "S"))]
    assert heat == pytest.approx([f + a for f, a in zip(would_sell, s_alone)], abs=1e-6)
    rows = q(runs["superseded"], f"select * from planning.supersession where cycle = '{CYCLE}' order by month")
    assert rows["month"].to_list() == MONTHS
    assert set(rows["successor_sku"]) == {"S"} and set(rows["sku"]) == {"P"} and set(rows["successor_family"]) == {"Heat"}
    assert rows["moved_units"].to_list() == pytest.approx(moved, abs=1e-6)
    assert rows["forecast_units"].to_list() == pytest.approx(would_sell, abs=1e-6)
    # Q has no successor: nothing of it moves anywhere
    assert q(runs["no_successor"], "select count(*) as n from planning.supersession")["n"][0] == 0


def test_the_demand_review_reports_the_units_moved_per_pair(runs, tmp_path):
    """The statistical forecast step's metadata names the pair and the units moved: the sum of
    P's forecast (as the run without the phase-out made it) times the share the fade cut."""
    import dagster as dg

    from orchestration.demand_review import statistical_forecast
    from orchestration.resources import PlanningModelsResource, WarehouseResource

    expected = sum(f * (1 - k) for f, k in zip(_demand(runs["p_active"], "P"), KEPT))
    warehouse = tmp_path / "sop.duckdb"
    shutil.copy(runs["superseded"], warehouse)
    result = dg.materialize(
        [statistical_forecast],
        partition_key=f"{CYCLE}-01",
        resources={
            "warehouse": WarehouseResource(path=str(warehouse)),
            "planning_models": PlanningModelsResource(path=str(runs["superseded"].parent.parent / "models")),
        },
    )
    meta = next(m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == "supersession").materialization.metadata
    assert meta["moved_units"].value == pytest.approx(expected, rel=1e-9)
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in meta["pairs"].value.splitlines()[2:]]
    assert rows == [["P", "S", "2026-11", "2028-10", f"{round(expected, 1):,.3f}", rows[0][-1]]], meta["pairs"].value


def test_phase_out_loss_leaves_out_the_volume_a_successor_takes_over(runs):
    def losses(warehouse: Path) -> dict[str, float]:
        rows = q(warehouse, f"select family, money from planning.exceptions where cycle = '{CYCLE}' and kind = 'phase_out_loss'")
        return dict(rows.iter_rows())

    with_successor, without = losses(runs["superseded"]), losses(runs["no_successor"])
    assert "Heat" in without and "Heat" not in with_successor
    # Cool's phase-out has no successor in either run: its loss is the same
    assert with_successor["Cool"] == pytest.approx(without["Cool"], rel=1e-9)


def _validate(tmp_path: Path, products: pl.DataFrame):
    folder = _company(tmp_path / "data", products)
    return validate_inputs(folder, CYCLE)


@pytest.mark.parametrize(
    ("change", "row_of", "rule"),
    [
        ({"P": {"successor_sku": "ZZZ-1"}}, "P", "unknown sku: not in products.csv"),
        ({"P": {"successor_sku": "P"}}, "P", "cannot be its own successor"),
        ({"A": {"successor_sku": "S"}}, "A", "only a product being phased out can have a successor"),
        # the row that names S, whose own successor would make a chain
        ({"S": {"successor_sku": "A", "discontinue_month": "2027-06", "status": "phase_out"}}, "P", "chains are not followed"),
        ({"S": {"discontinue_month": "2027-01", "status": "phase_out"}}, "P", "must outlive its predecessor"),
        ({"S": {"like_sku": "P", "launch_volume": None}}, "P", "counted twice"),
    ],
)
def test_a_broken_supersession_is_refused_naming_file_column_row_and_rule(tmp_path, change, row_of, rule):
    products = _products().with_columns(pl.lit(None, pl.String).alias("like_sku"))
    for sku, values in change.items():
        products = products.with_columns(
            [pl.when(pl.col("sku") == sku).then(pl.lit(v, products[c].dtype)).otherwise(pl.col(c)).alias(c) for c, v in values.items()]
        )
    with pytest.raises(InputError) as caught:
        _validate(tmp_path, products)
    error = caught.value
    assert (error.file, error.column, error.row) == ("products.csv", "successor_sku", list(FAMILY).index(row_of) + 1), str(error)
    assert rule in error.rule and "Traceback" not in str(error) and "\n" not in str(error)


def test_a_successor_needs_no_basis_of_its_own(tmp_path):
    """S without a launch volume (or like_sku) is not refused: its predecessor's demand is its basis."""
    products = _products().with_columns(pl.lit(None, pl.Float64).alias("launch_volume"))
    assert _validate(tmp_path, products).typed("products")["successor_sku"].to_list() == [None, "S", None, None, None]
    alone = _products(p_successor=None).with_columns(pl.lit(None, pl.Float64).alias("launch_volume"))
    with pytest.raises(InputError, match="needs a like_sku"):
        _validate(tmp_path / "alone", alone)


def test_an_unknown_successor_stops_the_cycle_with_one_line_and_no_stack_trace(tmp_path):
    from orchestration.runner import run_cycle

    folder = _company(tmp_path / "data", _products().with_columns(pl.col("successor_sku").replace("S", "S-TYPO")))
    outcome = run_cycle(CYCLE, str(folder), str(tmp_path / "sop.duckdb"), printer=lambda _: None)
    assert not outcome.success and outcome.stopped_at == ["input_files"]
    message = outcome.explanation()
    assert "products.csv, column 'successor_sku', row 2: unknown sku: not in products.csv (a typo?) (value 'S-TYPO')" in message, message
    assert "Traceback" not in message and len(message.splitlines()) == 1
