"""The one Dagster instance every run of a repo shares: `sop run`, `make demo`, `make dev`'s UI,
its schedule and its sensors.

A run the command line started is then a run the UI shows, with its materializations and
checks, so a planner opening the UI after `make demo` sees every cycle filled and can rerun a
step from where the command line left off. The instance lives in `DAGSTER_HOME`, by default
`.dagster/` in the repo (what `make dev` uses), and is created on first use with the settings
in `orchestration/dagster.yaml`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

from orchestration.paths import REPO_ROOT

INSTANCE_SETTINGS = Path(__file__).with_name("dagster.yaml")


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / ".dagster").resolve()


def shared_instance() -> dg.DagsterInstance:
    """The repo's instance (DAGSTER_HOME), created with the project's settings when new."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_SETTINGS, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))
