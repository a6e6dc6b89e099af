"""Why the plan falls short: each exception's binding constraint, and the bottleneck ranking."""

from __future__ import annotations

import numpy as np
import polars as pl

from sop_pipeline import registry
from sop_pipeline.supply.common import EXPLAIN_LOOKBACK_MONTHS, QTY_TOL


def recent_best(values: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and month t, the largest value over months t-lookback..t and the month it is in."""
    T = values.shape[1]
    best = values.copy()
    tt = np.arange(T)[None, :]
    month = np.repeat(tt, values.shape[0], axis=0)
    for k in range(1, lookback + 1):  # a handful of shifts, each over whole arrays
        earlier = np.full_like(values, -np.inf)
        earlier[:, k:] = values[:, :-k]
        better = earlier > best
        best = np.where(better, earlier, best)
        # The month k before t itself, not k before the best month found so far.
        month = np.where(better, tt - k, month)
    return best, month


def best_per_sku(n: int, sku_of_row: np.ndarray, values: np.ndarray, month: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per SKU and month, the largest value over the SKU's rows (routings or BOM lines)."""
    T = values.shape[1]
    best = np.zeros((n, T))
    best_label = np.full((n, T), -1, dtype=np.int64)
    best_month = np.full((n, T), -1, dtype=np.int64)
    if len(sku_of_row) == 0:
        return best, best_label, best_month
    order = np.argsort(sku_of_row, kind="stable")
    s, v, mo, lab = sku_of_row[order], values[order], month[order], label[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    top = np.maximum.reduceat(v, starts, axis=0)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(s)]))
    is_top = v >= top[seg]
    first = np.minimum.reduceat(np.where(is_top, np.arange(len(s))[:, None], len(s)), starts, axis=0)
    first = np.minimum(first, len(s) - 1)
    best[s[starts]] = top
    best_label[s[starts]] = np.take_along_axis(lab, first, axis=0)
    best_month[s[starts]] = np.take_along_axis(mo, first, axis=0)
    return best, best_label, best_month


def exceptions(c, it, settings, detail, S, U, shadow, rent, cycle, scenario) -> pl.DataFrame:
    """Each SKU-month short of demand or below target, with the constraint that explains it.

    Every SKU-month above solver noise, so that `rollup.family_exceptions` adds up to the
    plan; the stored SKU detail drops those under `min_units` (see `rollup`).

    The constraint is read from the duals first (`evidence` 'dual'): among the capacity rows
    of the SKU's routings and the material rows of its BOM, in its month or the
    `EXPLAIN_LOOKBACK_MONTHS` before (stock for a month is built in the months before it; a
    constraint from much earlier explains little), the one where one more hour or unit would be
    worth most to this SKU: shadow price x hours per unit, or scarcity value x quantity per
    unit. Where no dual binds but the SKU plan had to cut this SKU (its own mix needed more of
    a resource or material than the family plan assumed, and it could not be bought or moved
    in time), that resource or material is named (`evidence` 'sku_detail', no shadow price).
    Otherwise `constraint_kind` says whether the LP's own item was short too, a cost trade-off
    the penalties in `models/supply.yaml` allow ('cost'), or only the SKU: a mix the family
    total covers but this SKU's share does not ('mix'; `evidence` 'stock' when other SKUs of
    its item hold the stock above their targets that would cover it).

    A dual prices more than the unit: one more hour in month t saves the lateness penalty of
    every month the unit would otherwise stay in backlog (late_cost_rate_per_month x price per
    month, plus the price itself if still open at the horizon's end), and a SKU with more hours
    per unit than its item's marginal unit gets that dual times its own hours. So
    `value_per_unit` is that dual value capped at what the unit can lose: its price under
    backorders (revenue delivered late) or its margin under lost sales (`unit_value`).
    """
    n, T = c.D.shape
    sku_inv, sku_short = detail["inventory"], detail["shortfall"]
    below = np.maximum(c.TGT - sku_inv, 0.0)
    flag = (sku_short > QTY_TOL) | (below > QTY_TOL)
    sku_i, month_i = np.nonzero(flag)
    schema = registry.table("supply_exception_skus").polars_schema()
    if len(sku_i) == 0:
        return pl.DataFrame(schema=schema)
    found = _constraints(c, it, settings, detail, S, U, shadow, rent, sku_i, month_i)
    kind, constraint, cmonth, price, dual, evidence = (found[k] for k in ("kind", "constraint", "cmonth", "price", "value", "evidence"))
    short, gap = sku_short[sku_i, month_i], below[sku_i, month_i]
    late = short if settings.costs.shortfall_mode == "lost_sales" else np.minimum(np.maximum(c.D[sku_i, month_i], 0.0), short)
    cap, below_rate = unit_value(c, settings.costs)
    cap, below_rate = cap[sku_i], below_rate[sku_i, month_i]
    value = np.where(np.isnan(dual), np.where(short > QTY_TOL, cap, np.minimum(below_rate, cap)), np.minimum(np.nan_to_num(dual), cap))
    surplus = _stock_elsewhere(c, it, sku_inv)[sku_i, month_i]
    evidence = np.where((evidence == "none") & (kind == "mix") & (surplus >= gap - QTY_TOL), "stock", evidence)
    months = pl.Series(c.months, dtype=pl.Date)
    frame = pl.DataFrame(
        {
            "sku": c.skus[sku_i].astype(str),
            "family": c.family[sku_i].astype(str),
            "item": it.names[it.item_of_sku[sku_i]].astype(str),
            "month": months.gather(month_i),
            "demand": c.D[sku_i, month_i],
            "exception": np.where(short > QTY_TOL, "shortfall", "below_target"),
            "shortfall": short,
            "late_units": late,
            "below_target": gap,
            "constraint_kind": kind,
            "constraint": pl.Series(list(constraint), dtype=pl.Utf8),
            "constraint_month": months.gather(np.maximum(cmonth, 0)),
            "_has": cmonth >= 0,
            "shadow_price": price,
            "dual_value_per_unit": dual,
            "value_per_unit": value,
            "value_lost": late * value,
            "evidence": evidence,
            "_cap": cap,
            "_below_rate": below_rate,
            "_surplus": surplus,
        }
    ).with_columns(
        pl.when(pl.col("_has")).then(pl.col("constraint_month")).alias("constraint_month"),
        pl.col("shadow_price", "dual_value_per_unit").fill_nan(None),  # unknown, not a number
    )
    what = sku_explanation(settings.costs.shortfall_mode == "lost_sales")
    return frame.with_columns(what.alias("explanation"), pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario")).select(
        list(schema)
    )


def unit_value(c, costs) -> tuple[np.ndarray, np.ndarray]:
    """Per SKU what a unit short can lose at most, and per SKU and month what a unit below
    target costs, from the same prices, costs and `models/supply.yaml` rates the LP uses.

    Backorders: the unit's price, the revenue delivered late (at risk if the customer does not
    wait). Lost sales: its margin, price - unit cost, what the company no longer earns. Below
    target: below_target_penalty_factor x unit cost per month, end_target_penalty_factor x
    max(price, cost) in the horizon's last month, at most the cap above.
    """
    price, cost = np.asarray(c.price, dtype=float), np.asarray(c.cost, dtype=float)
    cap = np.maximum(price - cost, 0.0) if costs.shortfall_mode == "lost_sales" else np.maximum(price, 0.0)
    T = c.D.shape[1]
    rate = np.repeat((costs.below_target_penalty_factor * cost)[:, None], T, axis=1)
    rate[:, -1] = costs.end_target_penalty_factor * np.maximum(price, cost)
    return cap, np.minimum(rate, cap[:, None])


def _stock_elsewhere(c, it, inventory: np.ndarray) -> np.ndarray:
    """Per SKU and month, the stock above target on the other SKUs of its planning item: what
    the family plan counts as covering this SKU's target although stock does not move."""
    surplus = np.maximum(inventory - c.TGT, 0.0)
    per_item = np.zeros((len(it.names), inventory.shape[1]))
    np.add.at(per_item, it.item_of_sku, surplus)
    return per_item[it.item_of_sku] - surplus


def _constraints(c, it, settings, detail, S, U, shadow, rent, sku_i, month_i) -> dict[str, np.ndarray]:
    """For each exception (SKU i, month t): the constraint that explains it, from the duals
    first, else from the cuts SKU detail made, with its month, shadow price and value per unit."""
    n, T = c.D.shape
    empty = (np.zeros((0, T)), np.zeros((0, T), dtype=np.int64))
    cap_val, cap_month = recent_best(shadow[c.r_res] * c.r_hours[:, None], EXPLAIN_LOOKBACK_MONTHS) if len(c.r_res) else empty
    mat_val, mat_month = recent_best(rent[c.b_mat] * c.b_qty[:, None], EXPLAIN_LOOKBACK_MONTHS) if len(c.b_mat) else empty
    cv, cl, cm = best_per_sku(n, c.r_sku, cap_val, cap_month, np.repeat(c.r_res[:, None], T, axis=1))
    mv, ml, mm = best_per_sku(n, c.b_sku, mat_val, mat_month, np.repeat(c.b_mat[:, None], T, axis=1))
    # The latest cut SKU detail made for this SKU up to the month.
    last_cut = np.maximum.accumulate(np.where(detail["limit_kind"] > 0, np.arange(T)[None, :], -1), axis=1)
    cut_kind = np.where(last_cut >= 0, np.take_along_axis(detail["limit_kind"], np.maximum(last_cut, 0), axis=1), 0)
    cut_ref = np.take_along_axis(detail["limit_ref"], np.maximum(last_cut, 0), axis=1)
    cv, cl, cm, mv, ml, mm, ck, cr, ct = (a[sku_i, month_i] for a in (cv, cl, cm, mv, ml, mm, cut_kind, cut_ref, last_cut))
    use_cap = (cv >= mv) & (cv > 1e-9)
    use_mat = ~use_cap & (mv > 1e-9)
    by_dual = use_cap | use_mat
    cut_cap = ~by_dual & (ck == 1)
    cut_mat = ~by_dual & (ck == 2)
    item = it.item_of_sku[sku_i]
    item_gap = (S[item, month_i] > QTY_TOL) | (U[item, month_i] > QTY_TOL)
    kind = np.select(
        [use_cap | cut_cap, use_mat | cut_mat, item_gap | (settings.planning.level == "sku")], ["capacity", "material", "cost"], "mix"
    )
    res_names = np.append(c.resources.astype(object), None)  # index -1 reads None
    mat_names = np.append(c.materials.astype(object), None)
    constraint = np.select(
        [use_cap, use_mat, cut_cap, cut_mat],
        [res_names[cl], mat_names[ml], res_names[np.where(ck == 1, cr, -1)], mat_names[np.where(ck == 2, cr, -1)]],
        None,
    )
    cmonth = np.select([use_cap, use_mat, cut_cap | cut_mat], [cm, mm, ct], -1)
    price = np.select(
        [use_cap, use_mat],
        [
            shadow[np.maximum(cl, 0), np.maximum(cm, 0)] if len(c.resources) else 0.0,
            rent[np.maximum(ml, 0), np.maximum(mm, 0)] if len(c.materials) else 0.0,
        ],
        np.nan,
    )
    value = np.select([use_cap, use_mat], [cv, mv], np.nan)
    evidence = np.select([by_dual, cut_cap | cut_mat], ["dual", "sku_detail"], "none")
    return {"kind": kind, "constraint": constraint, "cmonth": cmonth, "price": price, "value": value, "evidence": evidence}


def sku_explanation(lost_sales: bool) -> pl.Expr:
    """A sentence per SKU-month for the planner, always: the constraint, or why the unit is
    short or below target when none binds, then what a unit is worth and why."""
    when = pl.col("constraint_month").dt.strftime("%Y-%m")
    month = pl.col("month").dt.strftime("%Y-%m")
    what = pl.when(pl.col("exception") == "shortfall").then(pl.lit("short")).otherwise(pl.lit("below its stock target"))
    cause = (
        pl.when((pl.col("evidence") == "dual") & (pl.col("constraint_kind") == "capacity"))
        .then(
            pl.format(
                "{} capacity is full in {}: one more hour is worth {} to the plan", "constraint", when, pl.col("shadow_price").round(2)
            )
        )
        .when(pl.col("evidence") == "dual")
        .then(
            pl.format(
                "material {} is scarce in {} (lead time or supplier capacity): one more unit is worth {} above its cost",
                "constraint",
                when,
                pl.col("shadow_price").round(2),
            )
        )
        .when(pl.col("evidence") == "sku_detail")
        .then(
            pl.format(
                "{} ran out for this SKU in {}: its own mix needed more than the family plan assumed, and it could not be "
                "bought or moved in time",
                "constraint",
                when,
            )
        )
        .when(pl.col("evidence") == "stock")
        .then(
            pl.format(
                "the {} plan covers its target in total, but {} units above target sit on other SKUs of {} (opening stock "
                "or earlier production) and stock does not move between SKUs",
                "family",
                pl.col("_surplus").round(1),
                "item",
            )
        )
        .when(pl.col("constraint_kind") == "mix")
        .then(
            pl.format("the {} plan covers the family in {}, but its split to SKUs (fair shares) leaves this SKU {}", "family", month, what)
        )
        .otherwise(
            pl.format(
                "no capacity or material binds for this SKU in {} or the {} months before: the family plan leaves it {} "
                "as the cheaper option under the penalties of models/supply.yaml",
                month,
                pl.lit(EXPLAIN_LOOKBACK_MONTHS),
                what,
            )
        )
    )
    basis = "margin" if lost_sales else "price"
    worth = (
        pl.when(pl.col("dual_value_per_unit") > pl.col("_cap") + 1e-9)
        .then(
            pl.format(
                "a unit is valued at its {} {} (the dual, {} per unit, also counts lateness penalties of later months)",
                pl.lit(basis),
                pl.col("value_per_unit").round(2),
                pl.col("dual_value_per_unit").round(2),
            )
        )
        .when(pl.col("dual_value_per_unit").is_not_null())
        .then(pl.format("a unit is valued at the dual {} per unit, below its {}", pl.col("value_per_unit").round(2), pl.lit(basis)))
        .when(pl.col("exception") == "shortfall")
        .then(pl.format("a unit is valued at its {} {}", pl.lit(basis), pl.col("value_per_unit").round(2)))
        .otherwise(pl.format("a unit below target costs {} per month (models/supply.yaml)", pl.col("value_per_unit").round(2)))
    )
    return pl.format("{}; {}", cause, worth)


def bottlenecks(c, load, shadow, rent, requirement, cycle, scenario) -> pl.DataFrame:
    """Resources and materials ranked by what their scarcity costs the plan (dual x usage)."""
    res = pl.DataFrame(
        {
            "kind": "capacity",
            "constraint": c.resources.astype(str),
            "plant": c.plant.astype(str),
            "binding_months": (shadow > 0).sum(axis=1),
            "max_shadow_price": shadow.max(axis=1, initial=0.0),
            "shadow_value": (shadow * load).sum(axis=1),
            "usage": load.sum(axis=1),
            "peak_utilization": np.divide(load, c.cap, out=np.zeros_like(load), where=c.cap > 0).max(axis=1, initial=0.0),
        },
        schema_overrides={"plant": pl.Utf8},
    )
    mat = pl.DataFrame(
        {
            "kind": "material",
            "constraint": c.materials.astype(str),
            "plant": [None] * len(c.materials),
            "binding_months": (rent > 0).sum(axis=1),
            "max_shadow_price": rent.max(axis=1, initial=0.0),
            "shadow_value": (rent * requirement).sum(axis=1),
            "usage": requirement.sum(axis=1),
            "peak_utilization": np.full(len(c.materials), np.nan),
        },
        schema=res.schema,
    )
    return (
        pl.concat([res, mat])
        .filter(pl.col("binding_months") > 0)
        .sort("shadow_value", descending=True)
        .with_row_index("rank", offset=1)
        .select(pl.lit(cycle).alias("cycle"), pl.lit(scenario).alias("scenario"), pl.col("rank").cast(pl.Int64), pl.exclude("rank"))
    )
