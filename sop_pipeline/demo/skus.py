"""The SKUs: which family each belongs to, its lifecycle role and its base monthly volume.

Volumes are log-normal (a long tail of slow movers); a share of SKUs is intermittent, a few are
being launched, phased out or are new products still to come. New products borrow the level of
a like SKU, the way planners forecast them in practice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sop_pipeline.demo.catalogue import pick
from sop_pipeline.demo.families import Families

# Lifecycle roles used while generating (not written anywhere).
REGULAR, NPI, PHASE_OUT, LAUNCHED, INTERMITTENT = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Skus:
    family: np.ndarray  # family index per SKU
    role: np.ndarray
    base: np.ndarray  # base monthly volume (expected occurrences x size for intermittent SKUs)
    occ_size: np.ndarray  # mean order size of an intermittent SKU
    like: np.ndarray  # index of the like SKU, -1 for none
    launch_volume: np.ndarray  # NaN except for new products without a usable like SKU
    codes: pl.Series
    successor: np.ndarray  # index of the new product taking a phase-out's demand over, -1 for none

    @property
    def n(self) -> int:
        return self.family.size

    @property
    def is_npi(self) -> np.ndarray:
        return self.role == NPI

    @property
    def is_po(self) -> np.ndarray:
        return self.role == PHASE_OUT

    @property
    def is_launch(self) -> np.ndarray:
        return self.role == LAUNCHED

    @property
    def is_int(self) -> np.ndarray:
        return self.role == INTERMITTENT

    @property
    def smooth(self) -> np.ndarray:
        """Neither a new product nor intermittent: the SKUs promotions are run on."""
        return ~self.is_npi & ~self.is_int

    @property
    def has_like(self) -> np.ndarray:
        return self.like >= 0

    @property
    def has_successor(self) -> np.ndarray:
        return self.successor >= 0


def draw_skus(rng: np.random.Generator, fams: Families, n: int) -> Skus:
    """n SKUs dealt to the families by their counts (family-major, as codes are numbered)."""
    fam = np.repeat(np.arange(fams.count), fams.counts)
    role, npi_order = _roles(rng, n)
    successor = _supersession(fam, role, npi_order)
    base = (5 + rng.lognormal(np.log(45.0), 1.1, n)) * fams.scale[fam]
    occ_p = rng.uniform(0.12, 0.45, n)  # intermittent: chance of an order in a month
    occ_size = rng.uniform(1.0, 6.0, n)  # ... and its mean size
    base = np.where(role == INTERMITTENT, occ_p * occ_size, base)
    like, launch_volume, base = _like_skus(rng, fam, role, npi_order, base, fams.count)
    return Skus(
        family=fam,
        role=role,
        base=base,
        occ_size=occ_size,
        like=like,
        launch_volume=launch_volume,
        codes=_sku_codes(fams.codes, fam),
        successor=successor,
    )


def _roles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Lifecycle roles in fixed shares, on a random permutation; also the new products in
    permutation order (the first of them are the ones without a like SKU)."""
    perm = rng.permutation(n)
    n_npi = max(2, round(0.05 * n))
    n_po = max(1, round(0.05 * n))
    n_launch = max(2, round(0.02 * n))
    n_int = round(0.15 * n)
    role = np.full(n, REGULAR, dtype=np.int8)
    cut = np.cumsum([n_npi, n_po, n_launch, n_int])
    role[perm[: cut[0]]] = NPI
    role[perm[cut[0] : cut[1]]] = PHASE_OUT
    role[perm[cut[1] : cut[2]]] = LAUNCHED
    role[perm[cut[2] : cut[3]]] = INTERMITTENT
    return role, perm[: cut[0]]


def _supersession(fam: np.ndarray, role: np.ndarray, npi_order: np.ndarray) -> np.ndarray:
    """One phase-out (the first SKU of the catalogue being phased out) is superseded by a new
    product of its family, the way a range is refreshed; when the family has no new product, one
    of its regular SKUs becomes one (swapping roles with the last new product drawn, so the
    counts stay). `role` and `npi_order` are updated in place. Returns the successor index per
    SKU, -1 for none."""
    successor = np.full(fam.size, -1, dtype=np.int64)
    phase_outs = np.flatnonzero(role == PHASE_OUT)
    if phase_outs.size == 0:
        return successor
    old = phase_outs[0]
    kin = np.flatnonzero((role == NPI) & (fam == fam[old]))
    if kin.size == 0:
        regular = np.flatnonzero((role == REGULAR) & (fam == fam[old]))
        if regular.size == 0:
            return successor
        role[npi_order[-1]], role[regular[0]] = REGULAR, NPI
        npi_order[-1] = regular[0]
        kin = regular[:1]
    successor[old] = kin[0]
    return successor


def _like_skus(
    rng: np.random.Generator, fam: np.ndarray, role: np.ndarray, npi_order: np.ndarray, base: np.ndarray, F: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New products borrow a like SKU's level (same family, full clean history); a couple have no
    usable analogue and come with a launch volume from marketing instead.

    Returns the like SKU per SKU (-1 for none), the launch volume (NaN unless used) and the base
    volume with both applied."""
    n = fam.size
    is_npi = role == NPI
    like = np.full(n, -1, dtype=np.int64)
    n_nolike = min(npi_order.size // 2, max(2, round(0.1 * npi_order.size)))
    nolike = np.zeros(n, dtype=bool)
    nolike[npi_order[:n_nolike]] = True
    eligible = (role == REGULAR) & (base >= 20)
    for f in range(F):  # families only
        members = np.flatnonzero(is_npi & ~nolike & (fam == f))
        cand = np.flatnonzero(eligible & (fam == f))
        if members.size == 0:
            continue
        if cand.size == 0:
            nolike[members] = True
            continue
        like[members] = rng.choice(cand, size=members.size)
    base = np.where(like >= 0, base[np.maximum(like, 0)] * rng.uniform(0.6, 1.2, n), base)
    regular = role == REGULAR
    fam_median = np.array([np.median(base[(fam == f) & regular]) if ((fam == f) & regular).any() else np.median(base) for f in range(F)])
    lv = np.round(fam_median[fam] * rng.uniform(0.6, 1.5, n))
    launch_volume = np.where(nolike, np.maximum(lv, 1.0), np.nan)
    return like, launch_volume, np.where(nolike, launch_volume, base)


def _sku_codes(fam_codes: list[str], fam: np.ndarray) -> pl.Series:
    """'<family prefix>-<running number>', zero-padded so codes sort in catalogue order."""
    n = fam.size
    width = max(5, len(str(10000 + n)))
    return (
        pl.select(
            pl.concat_str(
                [pl.lit(pick(fam_codes, fam)), pl.lit("-"), pl.lit(pl.Series(np.arange(10001, 10001 + n)).cast(pl.String).str.zfill(width))]
            )
        )
        .to_series()
        .alias("sku")
    )
