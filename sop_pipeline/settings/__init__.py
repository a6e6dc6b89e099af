"""Every planner-edited settings file, loaded once into typed objects.

`models/` holds one YAML file per concern (calendar, inputs, product, demand, forecast,
supply, scenarios, gates); each has a pydantic model in this package (`sop_pipeline.settings.<file>`)
that states its keys, types and defaults once. `load_settings` reads the whole folder, so a
run uses one consistent set, and `Settings.digest` fingerprints what a step used: the digest
goes into every asset's metadata and, through `planning.settings_used`, into the plan version,
so a changed setting shows as a changed plan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sop_pipeline.settings.base import SettingsError, StrictModel, parse_settings, read_yaml
from sop_pipeline.settings.calendar import CalendarSettings
from sop_pipeline.settings.demand import DemandSettings
from sop_pipeline.settings.forecast import ForecastSettings, deep_merge
from sop_pipeline.settings.gates import Gates
from sop_pipeline.settings.inputs import InputSettings
from sop_pipeline.settings.product import ProductSettings
from sop_pipeline.settings.scenarios import ScenarioFile
from sop_pipeline.settings.supply import SupplySettings

__all__ = ["Settings", "SettingsError", "load_settings", "SETTINGS_FILES", "REPO_MODELS_DIR"]

REPO_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

# section -> (file in models/, model)
SETTINGS_FILES: dict[str, tuple[str, type[StrictModel]]] = {
    "calendar": ("calendar.yaml", CalendarSettings),
    "inputs": ("inputs.yaml", InputSettings),
    "product": ("product.yaml", ProductSettings),
    "demand": ("demand.yaml", DemandSettings),
    "forecast": ("forecast.yaml", ForecastSettings),
    "supply": ("supply.yaml", SupplySettings),
    "scenarios": ("scenarios.yaml", ScenarioFile),
    "gates": ("gates.yaml", Gates),
}


@dataclass(frozen=True)
class Settings:
    """The settings of one run, one typed object per file of `models/`."""

    calendar: CalendarSettings
    inputs: InputSettings
    product: ProductSettings
    demand: DemandSettings
    forecast: ForecastSettings
    supply: SupplySettings
    scenarios: ScenarioFile
    gates: Gates
    folder: str = ""
    profile: str | None = field(default=None)

    def digest(self, *sections: str) -> str:
        """sha256 (hex, 16 characters) of the named sections' values (all when none named).

        Values, not file bytes: a comment or a reordered key does not change a plan; a changed
        number does.
        """
        names = sections or tuple(SETTINGS_FILES)
        payload = {name: getattr(self, name).model_dump(mode="json") for name in names}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def as_json(self, *sections: str) -> str:
        names = sections or tuple(SETTINGS_FILES)
        return json.dumps({name: getattr(self, name).model_dump(mode="json") for name in names}, sort_keys=True)


def _read_forecast(path: Path, profile: str | None) -> Any:
    raw = read_yaml(path)
    if profile is not None:
        profiles = raw.get("profiles") or {}
        if profile not in profiles:
            raise SettingsError(f"{path}: no profile {profile!r} (profiles: {', '.join(profiles) or 'none'})")
        raw = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, profiles[profile])
    return raw


def load_settings(models_dir: str | Path | None = None, forecast_profile: str | None = None) -> Settings:
    """Read every settings file of `models_dir` (default: the repository's `models/`).

    A missing file takes its model's defaults, except `forecast.yaml`, which must name its
    candidates. Any unknown key or wrong type raises `SettingsError` naming file and key.
    """
    folder = Path(models_dir) if models_dir else REPO_MODELS_DIR
    if not folder.is_dir():
        raise SettingsError(f"{folder}: the settings folder does not exist (set --models or SOP_MODELS_DIR)")
    values: dict[str, Any] = {}
    for section, (file_name, model) in SETTINGS_FILES.items():
        path = folder / file_name
        if section == "forecast":
            raw = _read_forecast(path, forecast_profile)
        else:
            raw = read_yaml(path) if path.exists() else {}
        values[section] = parse_settings(model, raw, str(path))
    return Settings(**values, folder=str(folder), profile=forecast_profile)
