"""Where things live by default. Every path can be overridden by an environment variable, so
the same code location runs on a laptop, in CI and on a Dagster deployment."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "transforms"
MODELS_DIR = Path(os.environ.get("SOP_MODELS_DIR", REPO_ROOT / "models"))


def default_data_dir() -> str:
    return os.environ.get("SOP_DATA_DIR", str(REPO_ROOT / "demo_data"))


def default_warehouse() -> str:
    return os.environ.get("SOP_WAREHOUSE", str(REPO_ROOT / "warehouse" / "sop.duckdb"))
