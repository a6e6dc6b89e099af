"""Product families: the level at which seasonality, trend, price history and macro response live.

SKUs inherit all of these from their family (with some SKU-level spread, see `demand.py`), which
is what makes the family the natural level for budgets, marketing campaigns and price changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sop_pipeline.demo.catalogue import FAMILIES, family_count, largest_remainder
from sop_pipeline.demo.indicators import Indicators
from sop_pipeline.demo.months import Window


@dataclass(frozen=True)
class Families:
    names: list[str]
    codes: list[str]  # SKU and material code prefixes
    nouns: np.ndarray  # F x 4 product nouns
    season: np.ndarray  # F x 12 seasonal index, mean 1
    growth: np.ndarray  # yearly trend
    price_factor: np.ndarray  # F x T list price relative to today's
    price_effect: np.ndarray  # F x T volume response to price (elasticity, forward buying)
    macro: np.ndarray  # F x T volume response to the indicators
    scale: np.ndarray  # volume level of the family's SKUs
    component_cost: np.ndarray  # cost level of the family's own components
    hours_level: np.ndarray  # hours per unit before calibration to the lines
    budget_growth: np.ndarray  # the budget's ambition over last year
    counts: np.ndarray  # SKUs per family

    @property
    def count(self) -> int:
        return len(self.names)


def draw_families(rng: np.random.Generator, window: Window, n: int, ind: Indicators) -> Families:
    """Families for a company of n SKUs. The draws happen in a fixed order (reordering them would
    change every seeded company)."""
    F = family_count(n)
    cat = FAMILIES[:F]
    season, growth, elasticity = _seasons_and_trends(rng, cat)
    price_factor, price_effect = _price_response(rng, window, elasticity)
    macro = _macro_response(rng, window, ind, F)
    fam_scale = np.clip(rng.lognormal(0.0, 0.3, F), 0.6, 1.6)
    comp_cost_level = rng.lognormal(np.log(4.0), 0.5, F)
    hpu_level = rng.lognormal(np.log(0.12), 0.45, F)  # rescaled per line in `lines.py`
    budget_growth = rng.uniform(0.03, 0.08, F) + np.where(rng.random(F) < 1 / 3, rng.uniform(0.03, 0.06, F), 0.0)
    # Family sizes are uneven, with a floor so every family has a few SKUs to plan.
    m0 = max(3, int(0.4 * n / F))
    counts = m0 + largest_remainder(rng.dirichlet(np.full(F, 4.0)), n - m0 * F)
    return Families(
        names=[x[0] for x in cat],
        codes=[x[1] for x in cat],
        nouns=np.array([list(x[3]) for x in cat]),
        season=season,
        growth=growth,
        price_factor=price_factor,
        price_effect=price_effect,
        macro=macro,
        scale=fam_scale,
        component_cost=comp_cost_level,
        hours_level=hpu_level,
        budget_growth=budget_growth,
        counts=counts,
    )


def _seasons_and_trends(rng: np.random.Generator, cat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seasonal index (F x 12), yearly growth and price elasticity. Trends are dealt evenly
    (grow, flat, decline) so that every company has a declining family to discuss."""
    F = len(cat)
    amp = rng.uniform(0.5, 1.0, F)
    season = np.stack([_season_shape(x[2], a) for x, a in zip(cat, amp)])  # F x 12
    trend_kind = rng.permutation(np.resize(np.array([0, 1, 2]), F))  # 0 grow, 1 flat, 2 decline
    growth = np.choose(trend_kind, [rng.uniform(0.04, 0.12, F), rng.uniform(-0.01, 0.02, F), rng.uniform(-0.10, -0.03, F)])
    elasticity = rng.uniform(0.8, 1.8, F)
    return season, growth, elasticity


def _season_shape(kind: str, amp: float) -> np.ndarray:
    """A 12-month seasonal index (mean 1). Peaks are bumps on a circular calendar."""
    m = np.arange(12, dtype=float)

    def bump(peak: float, width: float) -> np.ndarray:
        d = np.abs(m - peak)
        d = np.minimum(d, 12 - d)
        return np.exp(-0.5 * (d / width) ** 2)

    shape = {
        "summer": 1 + 1.3 * amp * bump(6.0, 1.3),
        "winter": 1 + 1.3 * amp * bump(11.6, 1.4),
        "q4": 1 + 1.7 * amp * bump(10.6, 0.8),
        "flat": 1 + 0.12 * amp * bump(11.0, 1.5),
        "spring": 1 + 1.2 * amp * bump(3.8, 1.2),
        "back_to_school": 1 + 1.5 * amp * bump(7.6, 0.8),
        "autumn": 1 + 1.0 * amp * bump(9.5, 1.6),
        "bimodal": 1 + amp * (0.6 * bump(3.5, 1.0) + 1.0 * bump(10.8, 0.8)),
    }[kind]
    return shape / shape.mean()


def _price_response(rng: np.random.Generator, window: Window, elasticity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One or two list-price increases in the history: the price factor (history before an
    increase was cheaper) and the volume effect, which answers the price through the elasticity
    and shows customers forward-buying the month before an increase."""
    F, H, t = elasticity.size, window.history, window.t
    inc1_t = rng.integers(2, H // 3 + 1, F)
    inc1 = rng.uniform(0.03, 0.08, F)
    has_inc2 = rng.random(F) < 0.5
    inc2_t = rng.integers(H // 2, H - 2, F)
    inc2 = np.where(has_inc2, rng.uniform(0.02, 0.05, F), 0.0)
    prebuy = rng.uniform(0.05, 0.12, F)
    pf = np.ones((F, window.length))
    pf /= np.where(t[None, :] < inc1_t[:, None], 1 + inc1[:, None], 1.0)
    pf /= np.where(t[None, :] < inc2_t[:, None], 1 + inc2[:, None], 1.0)
    price_eff = pf ** (-elasticity[:, None])
    fi = np.arange(F)
    price_eff[fi, inc1_t - 1] *= 1 + prebuy
    price_eff[fi, inc1_t] *= 1 - prebuy / 2
    price_eff[fi[has_inc2], inc2_t[has_inc2] - 1] *= 1 + prebuy[has_inc2] / 2
    return pf, price_eff


def _macro_response(rng: np.random.Generator, window: Window, ind: Indicators, F: int) -> np.ndarray:
    """Each family's sensitivity to the indicators, so the series really explain demand."""
    cc, ip = ind.consumer_confidence, ind.industrial_production
    beta_cc = rng.uniform(0.0, 1.5, F)
    beta_ip = rng.uniform(0.0, 1.0, F)
    return (cc[None, :] / 100) ** beta_cc[:, None] * (ip[None, :] / ip[window.history]) ** beta_ip[:, None]
