"""Month arithmetic for the demo company, and the model-time window every stage works in.

Months are integers (year*12 + month-1) so that shifting is plain arithmetic; they become
'YYYY-MM' labels only when a frame is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

HORIZON_MONTHS = 24

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(month: str) -> int:
    """'YYYY-MM' to the integer month index."""
    m = _MONTH_RE.match(str(month))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"month must be 'YYYY-MM', got {month!r}")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def month_label(idx: int) -> str:
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def month_column(idx: np.ndarray) -> pl.Series:
    """Month labels for an integer array, built once per distinct month and gathered."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return pl.Series([], dtype=pl.String)
    lo, hi = int(idx.min()), int(idx.max())
    labels = pl.Series([month_label(i) for i in range(lo, hi + 1)], dtype=pl.String)
    return labels.gather(idx - lo)


def nullable_month_column(idx: np.ndarray, present: np.ndarray) -> pl.Series:
    """Month labels where `present`, null elsewhere (e.g. a discontinue month only for phase-outs)."""
    safe = np.where(present, idx, idx[present].min() if present.any() else 0)
    return pl.select(pl.when(pl.lit(pl.Series(present))).then(pl.lit(month_column(safe)))).to_series()


@dataclass(frozen=True)
class Window:
    """Model time t = 0..length-1 starts at the first history month; t = history is the cycle.

    Every (SKU x month) array of the generator is indexed in model time, so stages agree on
    which column is the cycle month without passing absolute months around.
    """

    cycle: int  # absolute index of the cycle month
    history: int  # history months, H
    horizon: int = HORIZON_MONTHS  # plan months from the cycle on (the planning calendar's)

    @property
    def first(self) -> int:
        """Absolute index of the first history month."""
        return self.cycle - self.history

    @property
    def length(self) -> int:
        """History plus horizon, T."""
        return self.history + self.horizon

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.length)

    @property
    def month_of_year(self) -> np.ndarray:
        return (self.first + self.t) % 12
