"""A synthetic but plausible company to run the whole S&OP cycle on.

The pipeline is only convincing if the data it runs on behaves like a real business: demand that
is seasonal, trending and noisy, a long tail of slow movers, price changes and promotions that
distort history, products being launched and retired, factories that run out of hours in peak
season and suppliers that cannot always deliver. This module fabricates such a company from a
seed, in exactly the shape declared by :mod:`sop_pipeline.contract`, so that forecasters, the
consensus step and the supply LP all have something real to chew on.

Everything is drawn from one generative model: an *expected* demand surface per SKU and month
(base volume x family seasonality x trend x price response x macro sensitivity x lifecycle),
from which history is sampled (with promotions and noise) and from which capacities, supplier
limits, stock and budgets are sized. That shared origin is what makes the pieces consistent: the
tight resource is tight because the demand that loads it is seasonal, the budget gap exists
because the family is declining while the budget asks for growth.

The generator is vectorised over SKUs and months (numpy/polars); only tiny dimensions (families,
plants, a few dozen consensus inputs, indicator months) are looped over in Python. Identical
arguments produce byte-identical CSV files.

Conventions of the generated files (the contract leaves them open):

* sales_history has no row for a month without sales (quantity is always >= 1); `promotion` is
  0.0 in months without a promotion, never null; `net_price` is always filled and reflects the
  list price of that month (before a price increase it was lower) minus the promotional discount.
* Quantities (sales, stock, open supply, budget volume, supplier capacity, material stock,
  launch volume) and capacity/overtime hours are whole numbers; hours per unit, qty_per, prices
  and costs are decimals.
* products: every SKU has a `launch_month` (catalogue SKUs: a month before the history window);
  `discontinue_month` only for phase_out; `like_sku` and `launch_volume` only for npi, exactly
  one of the two. npi SKUs have routings and a BOM (they must be producible once launched) but
  no sales history and no finished-goods stock.
* demand_inputs: `uplift_pct` values are percent (8.0 means +8%); `add` values may be negative
  (a lost listing); sales rows come before marketing rows, so layer order is sales, marketing.
* indicators: long format, two series (consumer_confidence, industrial_production) over the
  history and the 24-month horizon; demand really does respond to them (per family).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from sop_pipeline.contract import FILES_BY_NAME, INPUT_FILES

HORIZON_MONTHS = 24

# Lifecycle roles used while generating (not written anywhere).
_REGULAR, _NPI, _PHASE_OUT, _LAUNCHED, _INTERMITTENT = 0, 1, 2, 3, 4

# name, SKU code prefix, seasonal shape, product nouns. The first six have six distinct shapes so
# the default company already shows the whole seasonal repertoire.
_FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Cooling", "COO", "summer", ("Desk Fan", "Tower Fan", "Air Cooler", "Ceiling Fan")),
    ("Heating", "HEA", "winter", ("Oil Radiator", "Fan Heater", "Convector", "Heated Throw")),
    ("Gift Sets", "GFT", "q4", ("Gift Box", "Tasting Set", "Advent Calendar", "Hamper")),
    ("Kitchen", "KIT", "flat", ("Kettle", "Toaster", "Blender", "Hand Mixer")),
    ("Garden", "GAR", "spring", ("Hose Reel", "Pruner", "Lawn Trimmer", "Planter")),
    ("School & Office", "SCH", "back_to_school", ("Backpack", "Desk Lamp", "Pencil Case", "Organizer")),
    ("Lighting", "LGT", "autumn", ("LED Bulb", "Floor Lamp", "String Lights", "Spotlight")),
    ("Cleaning", "CLN", "flat", ("Vacuum", "Steam Mop", "Window Wiper", "Spray Mop")),
    ("Outdoor Living", "OUT", "summer", ("Parasol", "Grill", "Lounger", "Cooler Box")),
    ("Toys", "TOY", "q4", ("Building Set", "Plush", "Puzzle", "RC Car")),
    ("Bath", "BTH", "flat", ("Towel Rail", "Shower Head", "Bath Mat", "Mirror")),
    ("Travel", "TRV", "bimodal", ("Suitcase", "Travel Adapter", "Neck Pillow", "Duffel")),
    ("Pet Care", "PET", "flat", ("Pet Bed", "Feeder", "Leash", "Scratch Post")),
    ("Tools", "TLS", "spring", ("Drill", "Tool Box", "Sander", "Work Light")),
    ("Textiles", "TEX", "autumn", ("Duvet", "Blanket", "Cushion", "Curtain")),
    ("Audio", "AUD", "q4", ("Headphones", "Speaker", "Soundbar", "Radio")),
    ("Storage", "STO", "bimodal", ("Storage Box", "Shelf Unit", "Drawer Set", "Basket")),
    ("Sports", "SPT", "spring", ("Yoga Mat", "Dumbbell Set", "Bike Light", "Water Bottle")),
    ("Baby", "BAB", "flat", ("Baby Monitor", "Bottle Warmer", "Play Mat", "High Chair")),
    ("Party", "PTY", "q4", ("Party Lights", "Costume Kit", "Tableware Set", "Balloon Pack")),
)
_VARIANTS = ("Classic", "Pro", "Compact", "Deluxe", "Eco", "Max", "Mini", "Plus", "Essential", "Elite")
_COLOURS = ("White", "Black", "Silver", "Blue", "Red", "Green", "Grey", "Sand", "Graphite", "Copper")

_PLANTS = (
    ("Valencia", "VLC"), ("Poznan", "POZ"), ("Monterrey", "MTY"), ("Pune", "PNQ"),
    ("Bursa", "BUR"), ("Dong Nai", "DNA"), ("Brno", "BRQ"), ("Sorocaba", "SOD"),
)
_SUPPLIERS = (
    "Iberia Packaging SL", "Shenzhen Precision Parts Co.", "Rheinland Kunststoff GmbH",
    "Lombardia Motori SpA", "Penang Circuits Sdn Bhd", "Anatolia Textiles AS",
    "Gdansk Components Sp. z o.o.", "Guadalajara Electronics SA", "Kyushu Glassworks KK",
    "Nordic Metals AB", "Baltic Timber UAB", "Ohio Fasteners Inc.", "Milano Design Fabrics Srl",
    "Hanoi Plastics JSC", "Porto Cork & Foam Lda", "Czech Springs s.r.o.", "Chennai Castings Pvt Ltd",
    "Sao Paulo Resins Ltda", "Taipei Power Cells Corp", "Flanders Labels NV",
)
_COMMON_MATERIALS = (
    "Carton box small", "Carton box medium", "Carton box large", "Fastener kit", "Power cord",
    "User manual", "Label set", "Foam insert", "Screw pack", "Pallet wrap",
)
_COMPONENTS = (
    "Housing", "Motor", "Control board", "Frame", "Cover", "Cable harness", "Panel", "Fabric",
    "Resin granulate", "Aluminium profile", "Battery pack", "Switch", "Gear set", "Glass part",
    "Spring set", "Heating element",
)
_CUSTOMERS = (
    "MediaMarkt", "Carrefour", "Leroy Merlin", "Amazon EU", "Kingfisher", "El Corte Ingles",
    "Tesco", "Walmart MX", "Otto Group", "Bauhaus", "Fnac Darty", "Coolblue",
)
_SALES_OWNERS = (
    "Ana Ruiz (Sales EMEA)", "Tom Becker (Key Accounts DACH)", "Priya Nair (Sales APAC)",
    "Marcus Lee (Sales Americas)", "Sofia Rossi (Sales South Europe)",
)
_MARKETING_OWNERS = (
    "Julia Costa (Head of Marketing)", "Sam Okafor (Brand Manager)", "Lena Vogel (Trade Marketing)",
)
_EVENTS = (  # by calendar month, January first
    "January sales", "Valentine's promotion", "Spring catalogue", "Easter promotion",
    "Season opening campaign", "Summer TV campaign", "Summer sale", "Back-to-school campaign",
    "Autumn catalogue", "Halloween promotion", "Black Friday campaign", "Christmas TV campaign",
)

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


# --------------------------------------------------------------------------------------------
# small helpers


def _parse_month(month: str) -> int:
    """Months are handled as integers (year*12 + month-1) so that shifting is plain arithmetic."""
    m = _MONTH_RE.match(str(month))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"month must be 'YYYY-MM', got {month!r}")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def _month_str(idx: int) -> str:
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def _months(idx: np.ndarray) -> pl.Series:
    """Month labels for an integer array, built once per distinct month and gathered."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return pl.Series([], dtype=pl.String)
    lo, hi = int(idx.min()), int(idx.max())
    labels = pl.Series([_month_str(i) for i in range(lo, hi + 1)], dtype=pl.String)
    return labels.gather(idx - lo)


def _take(labels, idx: np.ndarray) -> pl.Series:
    return pl.Series(list(labels), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def _nullable_months(idx: np.ndarray, present: np.ndarray) -> pl.Series:
    safe = np.where(present, idx, idx[present].min() if present.any() else 0)
    return pl.select(pl.when(pl.lit(pl.Series(present))).then(pl.lit(_months(safe)))).to_series()


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Split an integer total in proportion to weights (deterministic, sums exactly)."""
    w = np.asarray(weights, dtype=float)
    raw = w / w.sum() * total
    out = np.floor(raw).astype(np.int64)
    rest = total - int(out.sum())
    if rest > 0:
        out[np.argsort(-(raw - out), kind="stable")[:rest]] += 1
    return out


def _family_count(n: int) -> int:
    """Six families for a mid-size company, growing slowly (to 20) for very large catalogues."""
    if n < 60:
        return max(2, n // 10)
    return int(np.clip(round(6 + 2 * np.log2(max(n, 300) / 300)), 6, len(_FAMILIES)))


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


def _indicators(rng: np.random.Generator, T: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Two smooth macro series: a consumer-confidence index with a soft dip early in the history
    and a slowly growing industrial-production index. Demand responds to both (per family), so
    the series carry real signal for a covariate model instead of being decoration."""
    eps = rng.normal(size=(2, T + 3))
    ar = np.zeros((2, T + 3))
    for t in range(1, T + 3):  # T is ~72: a loop over months only
        ar[:, t] = 0.85 * ar[:, t - 1] + eps[:, t]
    smooth = (ar[:, 1:-2] + ar[:, 2:-1] + ar[:, 3:]) / 3  # 3-month moving average
    t = np.arange(T, dtype=float)
    cc = 100 + 1.6 * smooth[0] - 5.0 * np.exp(-0.5 * ((t - H / 8) / (H / 10)) ** 2) + 0.03 * (t - H)
    ip = 100 * np.exp(0.0015 * (t - H) + 0.006 * smooth[1])
    return np.round(cc, 2), np.round(ip, 2)


# --------------------------------------------------------------------------------------------
# the generator


def generate_demo_company(
    skus: int = 300, seed: int = 7, cycle: str = "2026-11", history_months: int = 48
) -> dict[str, pl.DataFrame]:
    """Build every input file of the contract for a synthetic company.

    `cycle` is the planning month: history ends the month before it, the 24-month horizon
    (budget, indicators, open supply, consensus inputs, lifecycle dates) starts at it.
    Returns one DataFrame per contract file, keyed by file name, columns in contract order.
    """
    n = int(skus)
    H = int(history_months)
    if n < 20:
        raise ValueError("the demo company needs at least 20 SKUs")
    if H < 24:
        raise ValueError("history_months must be at least 24 (the budget uses last year's months)")
    c_abs = _parse_month(cycle)
    h0 = c_abs - H  # absolute index of the first history month
    T = H + HORIZON_MONTHS  # model time t = 0..T-1; t = H is the cycle month
    rng_fam, rng_sku, rng_hist, rng_res, rng_mat, rng_misc, rng_ind = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)
    )
    t = np.arange(T)
    moy = (h0 + t) % 12

    # ---- families: each carries its own seasonality, trend and price history ---------------
    F = _family_count(n)
    cat = _FAMILIES[:F]
    fam_names = [x[0] for x in cat]
    fam_codes = [x[1] for x in cat]
    amp = rng_fam.uniform(0.5, 1.0, F)
    season = np.stack([_season_shape(x[2], a) for x, a in zip(cat, amp)])  # F x 12
    trend_kind = rng_fam.permutation(np.resize(np.array([0, 1, 2]), F))  # 0 grow, 1 flat, 2 decline
    growth = np.choose(trend_kind, [rng_fam.uniform(0.04, 0.12, F), rng_fam.uniform(-0.01, 0.02, F),
                                    rng_fam.uniform(-0.10, -0.03, F)])
    elasticity = rng_fam.uniform(0.8, 1.8, F)
    inc1_t = rng_fam.integers(2, H // 3 + 1, F)
    inc1 = rng_fam.uniform(0.03, 0.08, F)
    has_inc2 = rng_fam.random(F) < 0.5
    inc2_t = rng_fam.integers(H // 2, H - 2, F)
    inc2 = np.where(has_inc2, rng_fam.uniform(0.02, 0.05, F), 0.0)
    prebuy = rng_fam.uniform(0.05, 0.12, F)
    beta_cc = rng_fam.uniform(0.0, 1.5, F)
    beta_ip = rng_fam.uniform(0.0, 1.0, F)
    fam_scale = np.clip(rng_fam.lognormal(0.0, 0.3, F), 0.6, 1.6)
    comp_cost_level = rng_fam.lognormal(np.log(4.0), 0.5, F)
    hpu_level = rng_fam.lognormal(np.log(0.12), 0.45, F)  # rescaled per line below
    budget_growth = rng_fam.uniform(0.03, 0.08, F) + np.where(
        rng_fam.random(F) < 1 / 3, rng_fam.uniform(0.03, 0.06, F), 0.0)

    # List-price factor relative to today's price: history before an increase was cheaper.
    pf = np.ones((F, T))
    pf /= np.where(t[None, :] < inc1_t[:, None], 1 + inc1[:, None], 1.0)
    pf /= np.where(t[None, :] < inc2_t[:, None], 1 + inc2[:, None], 1.0)
    # Volume answers the price (elasticity), customers forward-buy the month before an increase.
    price_eff = pf ** (-elasticity[:, None])
    fi = np.arange(F)
    price_eff[fi, inc1_t - 1] *= 1 + prebuy
    price_eff[fi, inc1_t] *= 1 - prebuy / 2
    price_eff[fi[has_inc2], inc2_t[has_inc2] - 1] *= 1 + prebuy[has_inc2] / 2
    cc, ip = _indicators(rng_ind, T, H)
    macro = (cc[None, :] / 100) ** beta_cc[:, None] * (ip[None, :] / ip[H]) ** beta_ip[:, None]

    # ---- SKUs: family sizes uneven, volume log-normal, lifecycle roles ----------------------
    m0 = max(3, int(0.4 * n / F))
    counts = m0 + _largest_remainder(rng_fam.dirichlet(np.full(F, 4.0)), n - m0 * F)
    fam = np.repeat(np.arange(F), counts)

    perm = rng_sku.permutation(n)
    n_npi = max(2, round(0.05 * n))
    n_po = max(1, round(0.05 * n))
    n_launch = max(2, round(0.02 * n))
    n_int = round(0.15 * n)
    role = np.full(n, _REGULAR, dtype=np.int8)
    cut = np.cumsum([n_npi, n_po, n_launch, n_int])
    role[perm[: cut[0]]] = _NPI
    role[perm[cut[0]: cut[1]]] = _PHASE_OUT
    role[perm[cut[1]: cut[2]]] = _LAUNCHED
    role[perm[cut[2]: cut[3]]] = _INTERMITTENT
    is_npi, is_po = role == _NPI, role == _PHASE_OUT
    is_launch, is_int = role == _LAUNCHED, role == _INTERMITTENT
    smooth = ~is_npi & ~is_int

    base = (5 + rng_sku.lognormal(np.log(45.0), 1.1, n)) * fam_scale[fam]
    occ_p = rng_sku.uniform(0.12, 0.45, n)  # intermittent: chance of an order in a month
    occ_size = rng_sku.uniform(1.0, 6.0, n)  # ... and its mean size
    base = np.where(is_int, occ_p * occ_size, base)

    # New products borrow a like SKU's level (same family, full clean history); a couple have no
    # usable analogue and come with a launch volume from marketing instead.
    like = np.full(n, -1, dtype=np.int64)
    n_nolike = min(n_npi // 2, max(2, round(0.1 * n_npi)))
    npi_order = perm[: cut[0]]
    nolike = np.zeros(n, dtype=bool)
    nolike[npi_order[:n_nolike]] = True
    eligible = (role == _REGULAR) & (base >= 20)
    for f in range(F):  # families only
        members = np.flatnonzero(is_npi & ~nolike & (fam == f))
        cand = np.flatnonzero(eligible & (fam == f))
        if members.size == 0:
            continue
        if cand.size == 0:
            nolike[members] = True
            continue
        like[members] = rng_sku.choice(cand, size=members.size)
    has_like = like >= 0
    base = np.where(has_like, base[np.maximum(like, 0)] * rng_sku.uniform(0.6, 1.2, n), base)
    fam_median = np.array([np.median(base[(fam == f) & (role == _REGULAR)]) if
                           ((fam == f) & (role == _REGULAR)).any() else np.median(base) for f in range(F)])
    lv = np.round(fam_median[fam] * rng_sku.uniform(0.6, 1.5, n))
    launch_volume = np.where(nolike, np.maximum(lv, 1.0), np.nan)
    base = np.where(nolike, launch_volume, base)

    # Lifecycle multiplier over model time: ramps for launches, decay and stop for phase-outs.
    launch_t = np.where(is_launch, rng_sku.integers(6, H - 3, n), -10**6)
    launch_t = np.where(is_npi, H + rng_sku.integers(1, 13, n), launch_t)
    ramp = rng_sku.integers(2, 6, n)
    lc = np.clip((t[None, :] - launch_t[:, None] + 1) / ramp[:, None], 0.0, 1.0)
    decline_t = H - rng_sku.integers(3, 13, n)
    decline_rate = rng_sku.uniform(0.03, 0.08, n)
    disc_t = H + rng_sku.integers(1, 19, n)
    po_curve = np.exp(-decline_rate[:, None] * np.maximum(0, t[None, :] - decline_t[:, None]))
    po_curve = np.where(t[None, :] >= disc_t[:, None], 0.0, po_curve)
    lc = np.where(is_po[:, None], po_curve, lc)

    strength = rng_sku.uniform(0.75, 1.25, n)
    s_sku = season[fam] ** strength[:, None]
    s_sku /= s_sku.mean(axis=1, keepdims=True)
    g_sku = growth[fam] + rng_sku.normal(0.0, 0.03, n)
    trend = np.exp(g_sku[:, None] * (t[None, :] - H) / 12)
    # Expected demand: the noise-free surface everything else is sized from.
    E = base[:, None] * s_sku[:, moy] * trend * price_eff[fam] * macro[fam] * lc

    # ---- cost structure: hours, materials and conversion cost define cost, cost defines price --
    hpu = np.maximum(np.round(hpu_level[fam] * rng_sku.lognormal(0.0, 0.35, n), 4), 0.002)

    # Resources: about one line per 32 SKUs, grouped in plants. Each family is made in one home
    # plant, and a plant's lines are shared by its families (a line makes fans in summer and
    # heaters in winter), which levels the load as real plants do. SKUs are dealt to the lines in
    # a snake order of their hours (biggest first) so lines carry similar loads, then hours per
    # unit are calibrated so a line's peak-month load is a plausible 420-540 h (a month has ~720).
    R = max(6, round(n / 32))
    P = 2 if R < 8 else min(3 + R // 60, len(_PLANTS))
    P = min(P, F)
    fam_plant = rng_res.permutation(F) % P
    plant_skus = np.bincount(fam_plant, weights=counts, minlength=P)
    plant_size = 1 + _largest_remainder(plant_skus, R - P)
    plant_start = np.concatenate([[0], np.cumsum(plant_size)[:-1]])
    res_plant = np.repeat(np.arange(P), plant_size)
    sku_plant = fam_plant[fam]
    h_raw = E[:, H:H + 12].mean(axis=1) * hpu
    order = np.lexsort((-h_raw, sku_plant))
    plant_first = np.concatenate([[0], np.cumsum(np.bincount(sku_plant, minlength=P))[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - plant_first[sku_plant[order]]
    L = plant_size[sku_plant]
    lane = np.where((rank // L) % 2 == 1, L - 1 - rank % L, rank % L)
    primary = plant_start[sku_plant] + lane
    plant_hours = np.zeros((P, 12))
    np.add.at(plant_hours, sku_plant, E[:, H:H + 12] * hpu[:, None])
    plant_peak = plant_hours.max(axis=1)
    hpu_scale = plant_size * rng_res.uniform(420.0, 540.0, P) / np.maximum(plant_peak, 1e-9)
    hpu = np.maximum(np.round(hpu * hpu_scale[sku_plant], 4), 0.001)
    # Alternates (priority 2): ~30% of SKUs, mostly a sister line, sometimes another plant.
    has_alt = rng_res.random(n) < 0.30
    p_start, p_size = plant_start[sku_plant], plant_size[sku_plant]
    same = (rng_res.random(n) < 0.6) & (p_size > 1)
    alt_same = p_start + (primary - p_start + 1 + rng_res.integers(0, np.maximum(p_size - 1, 1))) % p_size
    k = rng_res.integers(0, np.maximum(R - p_size, 1))
    alt_other = np.where(k < p_start, k, k + p_size)
    alt = np.where(same, alt_same, alt_other)
    alt_hpu = np.round(hpu * rng_res.uniform(1.10, 1.35, n), 4)

    plant_rate = rng_res.uniform(32.0, 60.0, P)
    rate = np.round(plant_rate[res_plant] * rng_res.uniform(0.9, 1.15, R), 2)

    # Materials: a few common ones (packaging, fasteners) plus each family's own components.
    C = int(np.clip(round(4 + n / 1000), 4, 30))
    k_f = np.clip(np.round(counts / 8), 4, 60).astype(np.int64)
    off = C + np.concatenate([[0], np.cumsum(k_f)[:-1]])
    M = C + int(k_f.sum())
    mat_fam = np.concatenate([np.full(C, -1), np.repeat(np.arange(F), k_f)])
    n_sup = int(np.clip(5 + M // 80, 5, len(_SUPPLIERS)))
    mat_cost = np.where(
        mat_fam < 0, rng_mat.uniform(0.15, 2.5, M),
        comp_cost_level[np.maximum(mat_fam, 0)] * rng_mat.lognormal(0.0, 0.6, M))
    mat_cost = np.maximum(np.round(mat_cost, 2), 0.05)
    fam_supplier = 1 + rng_mat.permutation(F) % (n_sup - 1)
    second = rng_mat.integers(1, n_sup, M)
    supplier = np.where(mat_fam < 0, np.where(rng_mat.random(M) < 0.7, 0, second),
                        np.where(rng_mat.random(M) < 0.7, fam_supplier[np.maximum(mat_fam, 0)], second))
    lead = np.where(mat_fam < 0, rng_mat.integers(0, 2, M), rng_mat.integers(1, 4, M))
    lead = np.where((mat_fam >= 0) & (rng_mat.random(M) < 0.08), 0, lead)

    # BOM: one common material plus 1-3 family components per SKU.
    n_bom = rng_mat.choice(np.array([2, 3, 4]), p=[0.3, 0.45, 0.25], size=n)
    bmat = np.zeros((n, 4), dtype=np.int64)
    bmat[:, 0] = rng_mat.integers(0, C, n)
    start = rng_mat.integers(0, k_f[fam])
    for j in range(1, 4):  # BOM slots only
        bmat[:, j] = off[fam] + (start + j - 1) % k_f[fam]
    bqty = np.empty((n, 4))
    bqty[:, 0] = np.where(rng_mat.random(n) < 0.3, rng_mat.integers(2, 5, n), 1)
    discrete = rng_mat.random((n, 3)) < 0.5
    bqty[:, 1:] = np.where(discrete, rng_mat.integers(1, 5, (n, 3)),
                           np.round(rng_mat.uniform(0.1, 3.0, (n, 3)), 3))
    bvalid = np.arange(4)[None, :] < n_bom[:, None]
    mat_cost_sku = (bqty * mat_cost[bmat] * bvalid).sum(axis=1)
    conv_cost = hpu * rate[primary]
    unit_cost = np.maximum(np.round((mat_cost_sku + conv_cost) * rng_mat.uniform(1.08, 1.25, n), 2), 0.5)
    unit_price = np.round(unit_cost / rng_mat.uniform(0.45, 0.72, n), 2)
    unit_price = np.maximum(unit_price, unit_cost + 0.01)

    # ---- history: promotions, noise, slow movers --------------------------------------------
    Eh = E[:, :H]
    sold = lc[:, :H] > 0
    sigma = np.clip(0.42 - 0.045 * np.log(np.maximum(base, 1.0)), 0.08, 0.40) * rng_hist.uniform(0.85, 1.15, n)
    noise = np.exp(sigma[:, None] * rng_hist.normal(size=(n, H)) - sigma[:, None] ** 2 / 2)
    prone = smooth & (rng_hist.random(n) < 0.35)
    pm0 = prone[:, None] & (rng_hist.random((n, H)) < 0.12) & sold
    pm = pm0.copy()
    pm[:, 1:] &= ~pm0[:, :-1]  # no back-to-back promotions
    share = np.where(pm, np.minimum(np.round(rng_hist.integers(7, 31, (n, H)) / 30, 2), 1.0), 0.0)
    lift = rng_hist.uniform(0.4, 1.0, n)
    mult = 1 + lift[:, None] * share
    mult[:, 1:] *= 1 - 0.35 * lift[:, None] * share[:, :-1]  # post-promo dip (pantry loading)
    q_smooth = np.round(Eh * mult * noise)
    size = 1 + rng_hist.poisson(np.maximum(occ_size - 1, 0)[:, None], size=(n, H))
    occurs = rng_hist.random((n, H)) < np.clip(Eh / occ_size[:, None], 0.0, 0.95)
    q_int = np.where(occurs, size, 0)
    Q = np.where(is_int[:, None], q_int, q_smooth).astype(np.int64)
    Q[is_npi] = 0
    li = np.flatnonzero(is_launch)  # a launched SKU's history starts in its launch month
    Q[li, launch_t[li]] = np.maximum(Q[li, launch_t[li]], 1)
    depth = rng_hist.uniform(0.10, 0.25, n)
    pnoise = np.where(is_int, 0.03, 0.012)
    net = (unit_price[:, None] * pf[fam][:, :H] * (1 - depth[:, None] * share)
           * np.exp(pnoise[:, None] * rng_hist.normal(size=(n, H))))
    net = np.round(net, 2)

    # ---- frames -----------------------------------------------------------------------------
    width = max(5, len(str(10000 + n)))
    sku_codes = pl.select(
        pl.concat_str([pl.lit(_take(fam_codes, fam)), pl.lit("-"),
                       pl.lit(pl.Series(np.arange(10001, 10001 + n)).cast(pl.String).str.zfill(width))])
    ).to_series().alias("sku")

    fam_nouns = np.array([list(x[3]) for x in cat])  # F x 4
    noun = fam_nouns[fam, rng_misc.integers(0, 4, n)]
    variant = np.array(_VARIANTS)[rng_misc.integers(0, len(_VARIANTS), n)]
    colour = np.array(_COLOURS)[rng_misc.integers(0, len(_COLOURS), n)]
    description = pl.select(pl.concat_str([pl.lit(pl.Series(noun)), pl.lit(pl.Series(variant)),
                                           pl.lit(pl.Series(colour))], separator=" ")).to_series()

    old_launch = rng_misc.integers(-120, 0, n)  # catalogue SKUs launched before the history window
    launch_abs = h0 + np.where(is_launch | is_npi, launch_t, old_launch)
    products = pl.DataFrame({
        "sku": sku_codes,
        "description": description,
        "family": _take(fam_names, fam),
        "unit_price": unit_price,
        "unit_cost": unit_cost,
        "status": _take(("active", "npi", "phase_out"),
                        np.where(is_npi, 1, np.where(is_po, 2, 0))),
        "launch_month": _months(launch_abs),
        "discontinue_month": _nullable_months(h0 + disc_t, is_po),
        "like_sku": pl.select(pl.when(pl.lit(pl.Series(has_like))).then(
            pl.lit(sku_codes.gather(np.maximum(like, 0))))).to_series(),
        "launch_volume": pl.Series(launch_volume).fill_nan(None).cast(pl.Int64),
    })

    mi, si = np.nonzero(Q.T > 0)  # month-major, like a monthly ERP extract
    sales_history = pl.DataFrame({
        "month": _months(h0 + mi),
        "sku": sku_codes.gather(si),
        "quantity": Q[si, mi],
        "net_price": net[si, mi],
        "promotion": share[si, mi],
    })

    # Capacity is sized from the next year's expected load on the preferred lines: most lines
    # run ~75-90% on average and cope with peaks on overtime; a few are genuinely tight and
    # force pre-building, alternates or unmet demand in season.
    Ey = E[:, H:H + 12]
    load = np.zeros((R, 12))
    np.add.at(load, primary, Ey * hpu[:, None])
    avg, peak = load.mean(axis=1), load.max(axis=1)
    n_tight = max(1, round(0.2 * R))
    tight = np.zeros(R, dtype=bool)
    tight[rng_res.choice(R, n_tight, replace=False)] = True
    cap = np.where(
        tight,
        np.maximum(avg / rng_res.uniform(0.86, 0.93, R), peak / rng_res.uniform(1.18, 1.30, R)),
        np.maximum(avg / rng_res.uniform(0.76, 0.90, R), peak / rng_res.uniform(1.00, 1.12, R)))
    cap = np.where(cap > 0, np.ceil(cap / 10) * 10, 160.0)
    ot_share = rng_res.uniform(0.10, 0.20, R)
    ot_share = np.where(tight, ot_share, np.maximum(ot_share, peak / cap - 1 + 0.03))
    overtime = np.round(cap * ot_share)
    res_codes = [f"{_PLANTS[p][1]}-L{j + 1:02d}" for p in range(P) for j in range(plant_size[p])]
    resources = pl.DataFrame({
        "resource": res_codes,
        "plant": _take([x[0] for x in _PLANTS[:P]], res_plant),
        "capacity_hours": cap.astype(np.int64),
        "overtime_hours": overtime.astype(np.int64),
        "cost_per_hour": rate,
        "overtime_cost_per_hour": np.round(rate * 1.5, 2),
    })
    res_s = pl.Series(res_codes, dtype=pl.String)

    ai = np.flatnonzero(has_alt)
    routings = pl.DataFrame({
        "sku": pl.concat([sku_codes, sku_codes.gather(ai)]),
        "resource": res_s.gather(np.concatenate([primary, alt[ai]])),
        "hours_per_unit": np.concatenate([hpu, alt_hpu[ai]]),
        "priority": np.concatenate([np.ones(n, np.int64), np.full(ai.size, 2, np.int64)]),
        "_i": np.concatenate([np.arange(n), ai]),
    }).sort(["_i", "priority"]).drop("_i")

    # Supplier capacity: comfortable headroom except for one or two constrained materials.
    bi, bj = np.nonzero(bvalid)
    req = np.zeros((M, 12))
    np.add.at(req, bmat[bi, bj], Ey[bi] * bqty[bi, bj][:, None])
    r_avg, r_peak = req.mean(axis=1), req.max(axis=1)
    n_mtight = 1 if M < 60 else 2 + M // 400
    comp_ids = np.flatnonzero((mat_fam >= 0) & (r_avg > 0))
    m_tight = np.zeros(M, dtype=bool)
    m_tight[rng_mat.choice(comp_ids, min(n_mtight, comp_ids.size), replace=False)] = True
    scap = np.where(m_tight, r_avg * rng_mat.uniform(1.0, 1.08, M),
                    np.maximum(r_avg * rng_mat.uniform(1.2, 1.4, M), r_peak * 1.02))
    scap = np.where(r_avg > 0, np.ceil(scap), 100.0)
    mat_codes = [f"M-COM-{j + 1:03d}" for j in range(C)] + [
        f"M-{fam_codes[f]}-{j + 1:03d}" for f in range(F) for j in range(k_f[f])]
    mat_desc = [_COMMON_MATERIALS[j % len(_COMMON_MATERIALS)] + ("" if j < len(_COMMON_MATERIALS)
                else f" type {j // len(_COMMON_MATERIALS) + 1}") for j in range(C)]
    comp_pick = rng_mat.permutation(len(_COMPONENTS))
    mat_desc += [_COMPONENTS[comp_pick[(f + j) % len(_COMPONENTS)]]
                 + (f" {chr(65 + j // len(_COMPONENTS))}" if j >= len(_COMPONENTS) else "")
                 + f" for {fam_names[f]}" for f in range(F) for j in range(k_f[f])]
    mat_onhand = np.where(rng_mat.random(M) < 0.05, 0.0, np.round(r_avg * rng_mat.uniform(0.6, 1.4, M)))
    materials = pl.DataFrame({
        "material": mat_codes,
        "description": mat_desc,
        "supplier": _take(_SUPPLIERS[:n_sup], supplier),
        "unit_cost": mat_cost,
        "lead_time_months": lead.astype(np.int64),
        "supplier_capacity": scap.astype(np.int64),
        "on_hand": mat_onhand.astype(np.int64),
    })
    mat_s = pl.Series(mat_codes, dtype=pl.String)
    bom = pl.DataFrame({
        "sku": sku_codes.gather(bi),
        "material": mat_s.gather(bmat[bi, bj]),
        "qty_per": bqty[bi, bj],
    })

    # Finished goods: a bit over a month of cover on average, uneven, some stocked out.
    stocked = np.flatnonzero(~is_npi)
    level = np.maximum(Q[:, H - 3:].mean(axis=1), E[:, H])
    fg = np.round(level * rng_misc.uniform(0.5, 2.5, n))
    fg = np.where(rng_misc.random(n) < 0.05, 0.0, fg)
    inventory = pl.DataFrame({"sku": sku_codes.gather(stocked), "on_hand": fg[stocked].astype(np.int64)})

    # Open supply: production orders already released for the next months, purchase orders
    # already placed within each material's lead time.
    prod_sel = (role == _REGULAR) | is_launch
    prod_sel &= rng_misc.random(n) < 0.2
    pmask = prod_sel[:, None] & (rng_misc.random((n, 3)) < np.array([0.7, 0.4, 0.2]))
    pmask[:, 0] |= prod_sel & ~pmask.any(axis=1)
    pq = np.maximum(np.round(E[:, H:H + 3] * rng_misc.uniform(0.5, 1.5, (n, 3))), 1)
    ps, pk = np.nonzero(pmask)
    mmask = (lead[:, None] > np.arange(3)[None, :]) & (rng_misc.random((M, 3)) < 0.85) & (r_avg[:, None] > 0)
    mq = np.maximum(np.round(r_avg[:, None] * rng_misc.uniform(0.8, 1.2, (M, 3))), 1)
    ms, mk = np.nonzero(mmask)
    open_supply = pl.DataFrame({
        "item_type": ["product"] * ps.size + ["material"] * ms.size,
        "item": pl.concat([sku_codes.gather(ps), mat_s.gather(ms)]),
        "month": pl.concat([_months(c_abs + pk), _months(c_abs + mk)]),
        "quantity": np.concatenate([pq[ps, pk], mq[ms, mk]]).astype(np.int64),
    })

    # Budget: last year's actuals plus a growth ambition; for declining families (and those with
    # extra ambition) this opens the gap that the S&OP meeting has to talk about.
    fam_hist = np.zeros((F, H))
    np.add.at(fam_hist, fam, Q.astype(float))
    w = Q[:, H - 12:].sum(axis=1).astype(float)
    wsum = np.bincount(fam, weights=w, minlength=F)
    avg_price = np.bincount(fam, weights=w * unit_price, minlength=F) / np.maximum(wsum, 1)
    avg_cost = np.bincount(fam, weights=w * unit_cost, minlength=F) / np.maximum(wsum, 1)
    hz = np.arange(HORIZON_MONTHS)
    bvol = np.round(fam_hist[:, H - 12 + hz % 12] * (1 + budget_growth[:, None]) ** (1 + hz[None, :] // 12))
    bf, bt = np.meshgrid(np.arange(F), hz, indexing="xy")  # month-major rows
    bf, bt = bf.ravel(), bt.ravel()
    vol = bvol[bf, bt]
    revenue = np.round(vol * avg_price[bf], 2)
    budget = pl.DataFrame({
        "month": _months(c_abs + bt),
        "family": _take(fam_names, bf),
        "volume": vol.astype(np.int64),
        "revenue": revenue,
        "gross_margin": np.round(revenue - vol * avg_cost[bf], 2),
    })

    demand_inputs = _demand_inputs(rng_misc, n, F, H, c_abs, E, base, role, fam_names, sku_codes,
                                   launch_t, is_npi, season)

    months_all = np.repeat(np.arange(T), 2)
    indicators = pl.DataFrame({
        "month": _months(h0 + months_all),
        "indicator": ["consumer_confidence", "industrial_production"] * T,
        "value": np.stack([cc, ip], axis=1).ravel(),
    })

    frames = {
        "products": products, "sales_history": sales_history, "resources": resources,
        "routings": routings, "materials": materials, "bom": bom, "inventory": inventory,
        "open_supply": open_supply, "budget": budget, "demand_inputs": demand_inputs,
        "indicators": indicators, "price_plan": _price_plan(fam_names, c_abs),
    }
    return {f.name: frames[f.name].select(f.column_names) for f in INPUT_FILES}


def _demand_inputs(rng, n, F, H, c_abs, E, base, role, fam_names, sku_codes, launch_t, is_npi,
                   season):
    """Consensus layers as they arrive in a real cycle: sales adjusts its big accounts' SKUs
    (overrides and adds, mostly with a reason, one large override without), marketing lifts
    families for campaigns and supports launches. Only the first six horizon months, which is
    where people actually have information."""
    rows: list[tuple] = []
    # Sales: distinct big runners, one month each.
    n_sales = int(np.clip(round(16 * (n / 300) ** 0.25), 8, 48))
    cand = np.flatnonzero((role == _REGULAR) | (role == _LAUNCHED))
    cand = cand[np.argsort(-base[cand], kind="stable")][: max(n_sales, len(cand) // 4)]
    picks = rng.choice(cand, size=min(n_sales, cand.size), replace=False)
    offs = rng.integers(0, 6, picks.size)
    is_override = rng.random(picks.size) < 0.55
    factor = rng.uniform(0.75, 1.5, picks.size)
    add_share = rng.uniform(0.1, 0.5, picks.size)
    custs = rng.integers(0, len(_CUSTOMERS), picks.size)
    owners = rng.integers(0, len(_SALES_OWNERS), picks.size)
    no_reason = set(rng.choice(picks.size, size=2, replace=False).tolist())
    first_nr = min(no_reason)
    negative = int(rng.choice([i for i in range(picks.size) if i not in no_reason]))
    for i, (s, o) in enumerate(zip(picks, offs)):  # a few dozen rows
        exp = float(E[s, H + o])
        cust = _CUSTOMERS[custs[i]]
        if i == first_nr:  # a large, unexplained override: the pipeline should flag it
            adj, val, reason = "override", round(exp * rng.uniform(2.5, 3.2)), None
        elif i == negative:
            adj, val, reason = "add", -round(exp * rng.uniform(0.15, 0.3)), f"Listing lost at {cust}"
        elif is_override[i]:
            val = round(exp * factor[i])
            adj = "override"
            reason = (f"Range review at {cust}: fewer facings" if factor[i] < 1
                      else f"Customer forecast received from {cust}")
        else:
            adj, val = "add", round(exp * add_share[i])
            reason = f"Extra order: {cust} store openings"
        if i in no_reason and i != first_nr:
            reason = None
        rows.append(("sales", "sku", sku_codes[int(s)], _month_str(c_abs + int(o)), adj, float(val),
                     _SALES_OWNERS[owners[i]], reason))
    rows.sort(key=lambda r: (r[3], r[2]))
    # Marketing: family campaigns (uplift in percent) and launch support for new products.
    n_mkt = int(np.clip(round(8 * (n / 300) ** 0.2), 4, 20))
    in_season = season[:, (c_abs + np.arange(6)) % 12].ravel() ** 3  # campaigns run in season
    cells = rng.choice(F * 6, size=min(n_mkt, F * 6), replace=False, p=in_season / in_season.sum())
    mkt = []
    for cell in cells:
        f, o = int(cell // 6), int(cell % 6)
        month = c_abs + o
        mkt.append(("marketing", "family", fam_names[f], _month_str(month), "uplift_pct",
                    float(round(rng.uniform(5, 15), 1)), _MARKETING_OWNERS[int(rng.integers(0, 3))],
                    f"{_EVENTS[month % 12]}: {fam_names[f]} in-store display and online ads"))
    early = np.flatnonzero(is_npi & (launch_t < H + 6))[:6]
    for s in early:
        lt = int(launch_t[s])
        mkt.append(("marketing", "sku", sku_codes[int(s)], _month_str(c_abs + lt - H), "add",
                    float(max(1, round(0.5 * base[s]))), _MARKETING_OWNERS[1],
                    "Launch campaign: retailer pipeline fill"))
    mkt.sort(key=lambda r: (r[3], r[1], r[2]))
    rows += mkt
    rows = _past_demand_inputs(rng, H, c_abs, E, cand, n_sales, fam_names, sku_codes) + rows
    cols = FILES_BY_NAME["demand_inputs"].column_names
    return pl.DataFrame(rows, schema={c: (pl.Float64 if c == "value" else pl.String) for c in cols},
                        orient="row")


def _price_plan(fam_names, c_abs) -> pl.DataFrame:
    """Planned list-price changes: two families pass on cost inflation early in the horizon and
    every family moves with general inflation at the start of the second plan year. Enough for
    the financial review's bridge to show a price effect and for the forecast's price covariate."""
    order = sorted(range(len(fam_names)), key=lambda f: fam_names[f])
    rows = [("family", fam_names[order[0]], _month_str(c_abs + 2), 3.0),
            ("family", fam_names[order[1 % len(order)]], _month_str(c_abs + 5), 4.5)]
    rows += [("family", fam_names[f], _month_str(c_abs + 14), 2.0) for f in order]
    return pl.DataFrame(rows, schema={"level": pl.String, "key": pl.String, "month": pl.String, "price_change_pct": pl.Float64},
                        orient="row").unique(subset=["level", "key", "month"], keep="first", maintain_order=True)


def _past_demand_inputs(rng, H, c_abs, E, cand, n_sales, fam_names, sku_codes) -> list[tuple]:
    """Inputs made in earlier cycles for the six months now closing the history.

    Without them the accuracy step could only score the statistical layer: it is the inputs
    whose months already have actuals that show whether sales and marketing add value. Sales
    overrides here are informed (within about 10% of what demand turned out to be); marketing
    uplifts are blanket family campaigns, which typically destroy a little accuracy.
    """
    rows: list[tuple] = []
    picks = rng.choice(cand, size=min(n_sales, cand.size), replace=False)
    back = rng.integers(1, 7, picks.size)  # 1-6 months before the cycle
    owners = rng.integers(0, len(_SALES_OWNERS), picks.size)
    custs = rng.integers(0, len(_CUSTOMERS), picks.size)
    for s, b, owner, cust in zip(picks, back, owners, custs):
        value = round(float(E[s, H - b]) * rng.uniform(0.9, 1.12))
        rows.append(("sales", "sku", sku_codes[int(s)], _month_str(c_abs - int(b)), "override", float(value),
                     _SALES_OWNERS[owner], f"Customer forecast received from {_CUSTOMERS[cust]}"))
    families = rng.choice(len(fam_names), size=min(3, len(fam_names)), replace=False)
    for f in families:
        b = int(rng.integers(1, 7))
        rows.append(("marketing", "family", fam_names[int(f)], _month_str(c_abs - b), "uplift_pct",
                     float(round(rng.uniform(5, 15), 1)), _MARKETING_OWNERS[int(rng.integers(0, 3))],
                     f"{_EVENTS[(c_abs - b) % 12]}: {fam_names[int(f)]} campaign"))
    rows.sort(key=lambda r: (r[0] != "sales", r[3], r[2]))  # sales first: the layer order
    return rows


def write_demo_company(
    out_dir: str | Path, skus: int = 300, seed: int = 7, cycle: str = "2026-11", history_months: int = 48
) -> dict[str, Path]:
    """Write one `<name>.csv` per contract file into `out_dir` (created if missing).

    Returns the written paths keyed by file name. Same arguments give byte-identical files, so a
    demo run can be reproduced and diffed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in generate_demo_company(skus=skus, seed=seed, cycle=cycle,
                                          history_months=history_months).items():
        path = out / f"{name}.csv"
        df.write_csv(path)
        paths[name] = path
    return paths
