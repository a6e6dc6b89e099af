"""Settings files: typed, strict, defaults written once, and a changed setting is a changed plan."""

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from conftest import CYCLE

from sop_pipeline.settings import SettingsError, load_settings

MODELS = Path(__file__).resolve().parent.parent / "models"


def _copy(tmp_path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(MODELS, target)
    return target


def _edit(folder: Path, name: str, change) -> None:
    raw = yaml.safe_load((folder / name).read_text())
    change(raw)
    (folder / name).write_text(yaml.safe_dump(raw))


def test_the_shipped_settings_load_with_their_documented_values():
    s = load_settings(MODELS)
    assert s.calendar.horizon_months == 24 and s.calendar.fiscal_year_start_month == 1
    assert s.product.lifecycle.npi_ramp_months == 3
    assert s.gates.demand_review.override_threshold_pct == 50
    assert list(s.scenarios.named())[0] == "baseline"


@pytest.mark.parametrize(
    "file, change, where",
    [
        ("gates.yaml", lambda r: r["demand_review"].update(overide_threshold_pct=40), "demand_review.overide_threshold_pct: unknown key"),
        ("forecast.yaml", lambda r: r["backtest"].update(origns=3), "backtest.origns: unknown key"),
        ("supply.yaml", lambda r: r["costs"].update(shortfall_mode="lost"), "costs.shortfall_mode"),
        ("calendar.yaml", lambda r: r.update(horizon_months=48), "horizon_months"),
        ("product.yaml", lambda r: r["lifecycle"].update(npi_ramp_months="three"), "lifecycle.npi_ramp_months"),
        (
            "scenarios.yaml",
            lambda r: r["scenarios"]["heating_downturn"]["overlays"][0].update(percent=5),
            "scenarios.heating_downturn.overlays.0.demand_change.percent: unknown key",
        ),
    ],
)
def test_a_typo_or_a_wrong_type_names_the_file_and_the_key(tmp_path, file, change, where):
    folder = _copy(tmp_path)
    _edit(folder, file, change)
    with pytest.raises(SettingsError) as raised:
        load_settings(folder)
    assert str(folder / file) in str(raised.value) and where in str(raised.value)


def test_a_key_left_out_takes_the_default_and_the_digest_follows_values_not_text(tmp_path):
    folder = _copy(tmp_path)
    base = load_settings(folder)
    _edit(folder, "gates.yaml", lambda r: r["supply_review"].pop("fill_rate_target"))
    assert load_settings(folder).digest() == base.digest()  # the default is the shipped value
    _edit(folder, "gates.yaml", lambda r: r["supply_review"].update(fill_rate_target=0.9))
    changed = load_settings(folder)
    assert changed.gates.supply_review.fill_rate_target == 0.9
    assert changed.digest() != base.digest() and changed.digest("product") == base.digest("product")


def test_a_changed_setting_shows_in_the_assets_metadata_and_changes_the_plan_version(tmp_path, warehouse_copy):
    from orchestration.product_review import product_segmentation
    from orchestration.resources import PlanningModelsResource, WarehouseResource
    from sop_pipeline.executive.governance import plan_version

    def rerun(models: Path) -> tuple[str, str]:
        result = dg.materialize(
            [product_segmentation],
            partition_key=f"{CYCLE}-01",
            resources={
                "warehouse": WarehouseResource(path=str(warehouse_copy)),
                "planning_models": PlanningModelsResource(path=str(models)),
            },
        )
        materialization = result.asset_materializations_for_node("product_segmentation")[0]
        con = duckdb.connect(str(warehouse_copy), read_only=True)
        try:
            return materialization.metadata["settings_hash"].value, plan_version(con, CYCLE)
        finally:
            con.close()

    folder = _copy(tmp_path)
    first_hash, first_version = rerun(folder)
    assert rerun(folder) == (first_hash, first_version)  # same settings, same plan
    _edit(folder, "product.yaml", lambda r: r["segmentation"].update(intermittent_cv2=0.5))
    second_hash, second_version = rerun(folder)
    assert second_hash != first_hash and second_version != first_version
