"""Writing the demo company to a folder of CSV files, the way a company hands its inputs over."""

from __future__ import annotations

from pathlib import Path

from sop_pipeline.demo.company import generate_demo_company
from sop_pipeline.demo.months import HORIZON_MONTHS


def write_demo_company(
    out_dir: str | Path,
    skus: int = 300,
    seed: int = 7,
    cycle: str = "2026-11",
    history_months: int = 48,
    horizon_months: int = HORIZON_MONTHS,
) -> dict[str, Path]:
    """Write one `<name>.csv` per contract file into `out_dir` (created if missing).

    Returns the written paths keyed by file name. Same arguments give byte-identical files, so a
    demo run can be reproduced and diffed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, df in generate_demo_company(
        skus=skus, seed=seed, cycle=cycle, history_months=history_months, horizon_months=horizon_months
    ).items():
        path = out / f"{name}.csv"
        df.write_csv(path)
        paths[name] = path
    return paths
