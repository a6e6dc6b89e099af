"""The demo company must satisfy the input contract and look like a business worth planning."""

from __future__ import annotations

import re

import polars as pl
import pytest

from sop_pipeline.demo import generate_demo_company, write_demo_company
from sop_pipeline.inputs.contract import (
    FILES_BY_NAME,
    INPUT_FILES,
    INTEGER,
    MONTH,
    NONNEG,
    POSITIVE,
)

CYCLE = "2026-11"
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@pytest.fixture(scope="module")
def company() -> dict[str, pl.DataFrame]:
    return generate_demo_company(skus=300, seed=7, cycle=CYCLE)


@pytest.fixture(scope="module")
def big_company() -> dict[str, pl.DataFrame]:
    return generate_demo_company(skus=2000, seed=11, cycle=CYCLE)


def _months_between(first: str, last: str) -> int:
    fy, fm = map(int, first.split("-"))
    ly, lm = map(int, last.split("-"))
    return (ly * 12 + lm) - (fy * 12 + fm) + 1


def _shift(month: str, k: int) -> str:
    y, m = map(int, month.split("-"))
    i = y * 12 + m - 1 + k
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def _contract_violations(frames: dict[str, pl.DataFrame]) -> list[str]:
    """Every rule the contract declares, checked generically from the declaration."""
    problems: list[str] = []
    for spec in INPUT_FILES:
        df = frames[spec.name]
        if df.columns != spec.column_names:
            problems.append(f"{spec.name}: columns {df.columns} != {spec.column_names}")
            continue
        for col in spec.columns:
            s = df[col.name]
            if col.required and s.null_count():
                problems.append(f"{spec.name}.{col.name}: {s.null_count()} nulls")
            v = s.drop_nulls()
            if col.kind == MONTH and not v.map_elements(lambda x: bool(MONTH_RE.match(x)), return_dtype=pl.Boolean).all():
                problems.append(f"{spec.name}.{col.name}: not YYYY-MM")
            if col.kind in (NONNEG, POSITIVE, INTEGER) and not v.dtype.is_numeric():
                problems.append(f"{spec.name}.{col.name}: not numeric")
                continue
            if col.kind == NONNEG and (v < 0).any():
                problems.append(f"{spec.name}.{col.name}: negative values")
            if col.kind == POSITIVE and (v <= 0).any():
                problems.append(f"{spec.name}.{col.name}: non-positive values")
            if col.kind == INTEGER and (v.cast(pl.Float64) != v.cast(pl.Float64).round(0)).any():
                problems.append(f"{spec.name}.{col.name}: non-integral values")
            if col.allowed and not v.is_in(list(col.allowed)).all():
                problems.append(f"{spec.name}.{col.name}: values outside {col.allowed}")
        if df.select(spec.key).is_duplicated().any():
            problems.append(f"{spec.name}: duplicate keys {spec.key}")
        for ref in spec.references:
            rows = df if ref.when is None else df.filter(pl.col(ref.when[0]) == ref.when[1])
            missing = rows.filter(
                pl.col(ref.column).is_not_null() & ~pl.col(ref.column).is_in(frames[ref.target][ref.target_column].implode())
            )
            if missing.height:
                problems.append(f"{spec.name}.{ref.column}: {missing.height} values missing in {ref.target}")
    return problems


# --- contract -----------------------------------------------------------------------------


def test_every_contract_file_is_generated_with_exactly_its_columns_in_order(company):
    assert list(company) == [f.name for f in INPUT_FILES]
    for spec in INPUT_FILES:
        assert company[spec.name].columns == spec.column_names, spec.name
        assert company[spec.name].height > 0, spec.name


def test_all_contract_rules_hold_kinds_required_allowed_keys_references(company):
    assert _contract_violations(company) == []


def test_keys_are_unique(company):
    for spec in INPUT_FILES:
        assert not company[spec.name].select(spec.key).is_duplicated().any(), spec.name


def test_references_resolve_to_products_resources_and_materials(company):
    skus = set(company["products"]["sku"])
    for name in ("sales_history", "routings", "bom", "inventory"):
        assert set(company[name]["sku"]) <= skus, name
    assert set(company["routings"]["resource"]) <= set(company["resources"]["resource"])
    assert set(company["bom"]["material"]) <= set(company["materials"]["material"])


def test_open_supply_items_exist_in_products_or_materials_by_item_type(company):
    os_ = company["open_supply"]
    prod = os_.filter(pl.col("item_type") == "product")
    mat = os_.filter(pl.col("item_type") == "material")
    assert prod.height > 0 and mat.height > 0
    assert set(prod["item"]) <= set(company["products"]["sku"])
    assert set(mat["item"]) <= set(company["materials"]["material"])
    months = sorted(os_["month"].unique())
    assert months[0] >= CYCLE and months[-1] <= _shift(CYCLE, 2)


def test_family_budget_and_demand_inputs_refer_to_known_families_and_skus(company):
    families = set(company["products"]["family"])
    assert set(company["budget"]["family"]) == families
    di = company["demand_inputs"]
    assert set(di.filter(pl.col("level") == "family")["key"]) <= families
    assert set(di.filter(pl.col("level") == "sku")["key"]) <= set(company["products"]["sku"])


# --- determinism --------------------------------------------------------------------------


def test_same_arguments_give_equal_frames(company):
    again = generate_demo_company(skus=300, seed=7, cycle=CYCLE)
    for name, df in company.items():
        assert df.equals(again[name], null_equal=True), name


def test_a_different_seed_gives_a_different_company(company):
    other = generate_demo_company(skus=300, seed=8, cycle=CYCLE)
    assert not company["sales_history"].equals(other["sales_history"])


def test_written_csvs_are_byte_identical_across_runs_and_one_per_contract_file(tmp_path):
    a = write_demo_company(tmp_path / "a", skus=300, seed=7, cycle=CYCLE)
    b = write_demo_company(tmp_path / "b", skus=300, seed=7, cycle=CYCLE)
    assert sorted(a) == sorted(f.name for f in INPUT_FILES)
    for name, path in a.items():
        assert path.name == f"{name}.csv" and path.exists()
        assert path.read_bytes() == b[name].read_bytes(), name
        header = path.read_text().splitlines()[0]
        assert header == ",".join(FILES_BY_NAME[name].column_names)


# --- history ------------------------------------------------------------------------------


def test_history_spans_48_months_and_ends_the_month_before_the_cycle(company):
    months = company["sales_history"]["month"]
    assert months.max() == "2026-10"
    assert months.min() == "2022-11"
    assert months.n_unique() == 48


def test_history_follows_the_cycle_argument():
    d = generate_demo_company(skus=40, seed=3, cycle="2025-03", history_months=36)
    months = d["sales_history"]["month"]
    assert months.max() == "2025-02" and _months_between(months.min(), months.max()) == 36
    # the budget is annual: it starts in January of the cycle's year, with the closed months
    assert d["budget"]["month"].min() == "2025-01"


def test_zero_months_are_omitted_rather_than_written(company):
    assert company["sales_history"]["quantity"].min() >= 1


def test_share_of_intermittent_skus_is_roughly_10_to_20_percent(company):
    """Intermittent: >= 40% zero months in the last 24 months (counted from first sale)."""
    s = company["sales_history"]
    last24 = _shift("2026-10", -23)
    first = s.group_by("sku").agg(pl.col("month").min().alias("first"))
    recent = s.filter(pl.col("month") >= last24).group_by("sku").agg(pl.len().alias("nonzero"))
    stats = first.join(recent, on="sku", how="left").with_columns(pl.col("nonzero").fill_null(0))
    window = [_months_between(max(f, last24), "2026-10") for f in stats["first"]]
    stats = stats.with_columns(window=pl.Series(window))
    share = (1 - stats["nonzero"] / stats["window"] >= 0.4).mean()
    assert 0.10 <= share <= 0.20, share


def test_volume_is_concentrated_so_abc_classes_make_sense(company):
    vol = (
        company["sales_history"]
        .filter(pl.col("month") >= "2025-11")
        .group_by("sku")
        .agg(pl.col("quantity").sum())
        .sort("quantity", descending=True)
    )
    top20 = vol["quantity"].head(round(0.2 * vol.height)).sum() / vol["quantity"].sum()
    assert 0.55 <= top20 <= 0.9, top20


def test_history_contains_promotions_and_price_changes(company):
    s = company["sales_history"]
    promo = s.filter(pl.col("promotion") > 0)
    assert promo.height > 0.01 * s.height
    assert promo["promotion"].max() <= 1.0
    # Prices at the start of history are below today's list price for most SKUs (increases).
    first_year = (
        s.filter(pl.col("month") < "2023-06", pl.col("promotion") == 0)
        .group_by("sku")
        .agg(pl.col("net_price").median())
        .join(company["products"].select("sku", "unit_price"), on="sku")
    )
    assert (first_year["net_price"] < first_year["unit_price"]).mean() > 0.8


def test_families_have_distinct_seasonal_peaks(company):
    s = company["sales_history"].join(company["products"].select("sku", "family"), on="sku")
    by_moy = (
        s.with_columns(moy=pl.col("month").str.slice(5, 2))
        .group_by("family", "moy")
        .agg(pl.col("quantity").sum())
        .sort("quantity", descending=True)
        .group_by("family", maintain_order=True)
        .first()
    )
    assert by_moy.height == 6
    assert by_moy["moy"].n_unique() >= 4


# --- lifecycle ----------------------------------------------------------------------------


def test_statuses_are_mostly_active_with_about_5_percent_npi_and_phase_out(company):
    counts = dict(company["products"].group_by("status").len().iter_rows())
    assert counts["active"] >= 0.8 * 300
    assert 10 <= counts["npi"] <= 20
    assert 10 <= counts["phase_out"] <= 20


def test_npi_skus_launch_after_the_cycle_with_a_like_sku_with_history_or_a_launch_volume(company):
    p = company["products"]
    npi = p.filter(pl.col("status") == "npi")
    assert (npi["launch_month"] > CYCLE).all()
    assert (npi["launch_month"] <= _shift(CYCLE, 12)).all()
    sold = set(company["sales_history"]["sku"])
    assert not set(npi["sku"]) & sold, "npi SKUs must have no sales history"
    with_like = npi.filter(pl.col("like_sku").is_not_null())
    without = npi.filter(pl.col("like_sku").is_null())
    assert without.height >= 1 and (without["launch_volume"] > 0).all()
    assert with_like["launch_volume"].is_null().all()
    likes = with_like.join(
        p.select(pl.col("sku").alias("like_sku"), pl.col("family").alias("like_family"), pl.col("status").alias("like_status")),
        on="like_sku",
    )
    assert likes.height == with_like.height
    assert (likes["family"] == likes["like_family"]).all()
    assert (likes["like_status"] == "active").all()
    hist = company["sales_history"].group_by("sku").agg(pl.col("month").n_unique().alias("n"))
    full = set(hist.filter(pl.col("n") == 48)["sku"])
    assert set(with_like["like_sku"]) <= full


def test_phase_out_skus_are_discontinued_1_to_18_months_after_the_cycle(company):
    p = company["products"]
    po = p.filter(pl.col("status") == "phase_out")
    assert po["discontinue_month"].null_count() == 0
    assert (po["discontinue_month"] > CYCLE).all()
    assert (po["discontinue_month"] <= _shift(CYCLE, 18)).all()
    assert (po["discontinue_month"] > po["launch_month"]).all()
    assert p.filter(pl.col("status") != "phase_out")["discontinue_month"].is_null().all()


def test_skus_launched_during_history_start_selling_in_their_launch_month(company):
    p = company["products"].filter(pl.col("status") == "active", pl.col("launch_month") >= "2022-11")
    assert p.height >= 2
    first = company["sales_history"].group_by("sku").agg(pl.col("month").min().alias("first"))
    j = p.join(first, on="sku")
    assert j.height == p.height and (j["first"] == j["launch_month"]).all()


def test_prices_exceed_costs_which_are_positive(company):
    p = company["products"]
    assert (p["unit_cost"] > 0).all()
    assert (p["unit_price"] > p["unit_cost"]).all()


# --- supply side --------------------------------------------------------------------------


def test_every_sku_except_npi_has_one_preferred_routing_and_a_bom(company):
    p = company["products"].filter(pl.col("status") != "npi")
    r = company["routings"]
    preferred = r.filter(pl.col("priority") == 1).group_by("sku").len()
    assert set(p["sku"]) <= set(preferred["sku"])
    assert (preferred["len"] == 1).all()
    assert set(p["sku"]) <= set(company["bom"]["sku"])
    per_sku = company["bom"].group_by("sku").len()["len"]
    assert per_sku.min() >= 2 and per_sku.max() <= 4


def test_about_30_percent_of_skus_have_a_slower_alternate_routing(company):
    r = company["routings"]
    alt = r.filter(pl.col("priority") == 2)
    assert 0.2 <= alt.height / 300 <= 0.4
    j = alt.join(r.filter(pl.col("priority") == 1), on="sku", suffix="_1")
    assert (j["hours_per_unit"] > j["hours_per_unit_1"]).all()
    assert (j["resource"] != j["resource_1"]).all()


def test_plants_and_resources_are_sized_for_300_skus(company):
    res = company["resources"]
    assert res["plant"].n_unique() in (2, 3)
    assert 6 <= res.height <= 12
    assert (res["overtime_cost_per_hour"] > res["cost_per_hour"]).all()
    ot_share = res["overtime_hours"] / res["capacity_hours"]
    # VLC-L01, the bottleneck, has little overtime (8 %) on purpose: its peak goes short
    assert ot_share[0] == pytest.approx(0.08, abs=0.005) and res["resource"][0] == "VLC-L01"
    assert ot_share[1:].min() >= 0.09 and ot_share.max() <= 0.25


def test_capacity_is_loaded_but_some_resources_are_tight_in_peak(company):
    """Last year's demand on preferred routings as a stand-in for next year's load."""
    s = company["sales_history"].filter(pl.col("month") >= "2025-11")
    pref = company["routings"].filter(pl.col("priority") == 1)
    load = (
        s.join(pref, on="sku")
        .group_by("resource", "month")
        .agg((pl.col("quantity") * pl.col("hours_per_unit")).sum().alias("hours"))
        .join(company["resources"], on="resource")
        .with_columns(util=pl.col("hours") / pl.col("capacity_hours"))
        .group_by("resource")
        .agg(pl.col("util").mean().alias("avg"), pl.col("util").max().alias("peak"))
    )
    assert 0.6 <= load["avg"].median() <= 1.0
    assert (load["peak"] > 0.95).any()


def test_families_are_made_mainly_in_one_plant(company):
    pref = (
        company["routings"]
        .filter(pl.col("priority") == 1)
        .join(company["products"].select("sku", "family"), on="sku")
        .join(company["resources"].select("resource", "plant"), on="resource")
    )
    plants_per_family = pref.group_by("family").agg(pl.col("plant").n_unique())
    assert (plants_per_family["plant"] == 1).all()


def test_materials_have_short_lead_times_and_headroom_with_a_few_tight(company):
    m = company["materials"]
    assert m["lead_time_months"].is_between(0, 3).all()
    assert 3 <= m["supplier"].n_unique() <= 10
    assert (m["on_hand"] >= 0).all()


def test_inventory_covers_active_and_phase_out_skus_only(company):
    p = company["products"]
    inv = company["inventory"].join(p.select("sku", "status"), on="sku")
    assert set(inv["status"]) <= {"active", "phase_out"}
    assert inv.height == p.filter(pl.col("status") != "npi").height
    assert (inv["on_hand"] == 0).any() and (inv["on_hand"] > 0).mean() > 0.8


# --- plan inputs --------------------------------------------------------------------------


def test_budget_covers_the_fiscal_year_from_january_to_the_horizon_end_for_every_family(company):
    b = company["budget"]
    closed = int(CYCLE[5:7]) - 1  # months of the calendar (fiscal) year before the cycle
    assert b["month"].min() == f"{CYCLE[:4]}-01" and b["month"].n_unique() == closed + 24
    assert b.height == (closed + 24) * company["products"]["family"].n_unique()
    assert (b["revenue"] > b["gross_margin"]).all() and (b["gross_margin"] > 0).all()


def test_demand_inputs_are_a_few_dozen_layered_rows_in_the_first_six_months(company):
    di = company["demand_inputs"]
    assert 15 <= di.height <= 90
    assert di["layer"].unique(maintain_order=True).to_list() == ["sales", "marketing"]
    past = di.filter(pl.col("month") < CYCLE)  # earlier cycles' inputs, now scoreable against actuals
    assert past.height >= 5 and past["month"].min() >= _shift(CYCLE, -6)
    di = di.filter(pl.col("month") >= CYCLE)
    assert di["month"].min() >= CYCLE and di["month"].max() <= _shift(CYCLE, 5)
    fam_uplift = di.filter(pl.col("level") == "family")
    assert (fam_uplift["adjustment_type"] == "uplift_pct").all()
    assert fam_uplift["value"].is_between(5, 15).all()
    assert set(di.filter(pl.col("level") == "sku")["adjustment_type"]) >= {"override", "add"}
    assert 1 <= di["reason"].null_count() <= 2
    assert di.filter(pl.col("reason").is_null(), pl.col("adjustment_type") == "override").height >= 1


def test_indicators_cover_history_and_horizon_for_two_series(company):
    ind = company["indicators"]
    assert ind["indicator"].n_unique() == 2
    assert ind["month"].min() == "2022-11" and ind["month"].max() == _shift(CYCLE, 23)
    assert ind.height == 2 * 72


# --- scale --------------------------------------------------------------------------------


def test_2000_skus_keep_the_contract_and_scale_families_and_resources(big_company):
    assert _contract_violations(big_company) == []
    p = big_company["products"]
    assert p.height == 2000
    assert 8 <= p["family"].n_unique() <= 14
    assert 2000 / 45 <= big_company["resources"].height <= 2000 / 25
    assert big_company["sales_history"]["month"].n_unique() == 48
    npi = p.filter(pl.col("status") == "npi")
    assert 80 <= npi.height <= 120
    assert (npi["like_sku"].is_not_null() | npi["launch_volume"].is_not_null()).all()
