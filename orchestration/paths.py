"""Where things live by default. Every path can be overridden by an environment variable, read
when a run starts (not at import), so the same code location runs on a laptop, in CI and on a
Dagster deployment."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "transforms"


def default_data_dir() -> str:
    return os.environ.get("SOP_DATA_DIR", str(REPO_ROOT / "demo_data"))


def default_warehouse() -> str:
    return os.environ.get("SOP_WAREHOUSE", str(REPO_ROOT / "warehouse" / "sop.duckdb"))


def default_models_dir() -> str:
    return os.environ.get("SOP_MODELS_DIR", str(REPO_ROOT / "models"))
