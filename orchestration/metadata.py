"""What every review step's assets show in the UI: small tables and charts as metadata.

Charts are also written next to the warehouse, one folder per cycle, so the review pack and a
reader without the UI see the same pictures.
"""

import base64
from pathlib import Path

import dagster as dg
import polars as pl

from orchestration.resources import WarehouseResource
from sop_pipeline.warehouse import cycle_label


def md_table(frame: pl.DataFrame, limit: int = 25) -> dg.MetadataValue:
    """The first `limit` rows as a markdown table ("none" when empty)."""
    if frame.height == 0:
        return dg.MetadataValue.md("none")
    return dg.MetadataValue.md(frame.head(limit).to_pandas().to_markdown(index=False, floatfmt=".3f"))


def chart_dir(warehouse: WarehouseResource, cycle: str) -> Path:
    """Charts live next to the warehouse, one folder per cycle, readable without the UI."""
    folder = Path(warehouse.path).parent / "charts" / cycle_label(cycle)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def png_metadata(png: bytes, path: Path) -> dict[str, dg.MetadataValue]:
    """Write the chart to `path` and show it inline in the asset's metadata."""
    path.write_bytes(png)
    encoded = base64.b64encode(png).decode()
    return {"chart": dg.MetadataValue.md(f"![chart](data:image/png;base64,{encoded})"), "chart_path": dg.MetadataValue.path(str(path))}
