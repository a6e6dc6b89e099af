"""Typed settings files: what every `models/*.yaml` loader shares.

A planner edits YAML; a typo must fail the run at once with the file and the key named, not
fall back silently to a default halfway through a cycle. Every settings file is therefore
read into a pydantic model that rejects unknown keys and wrong types, and the defaults live
only in those models (a key left out of the YAML takes the model's default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

M = TypeVar("M", bound="StrictModel")


class StrictModel(pydantic.BaseModel):
    """A settings section: unknown keys and wrong types are errors; values are immutable."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class SettingsError(ValueError):
    """A settings file that cannot be used. The message names the file and the key."""


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def describe_validation_error(source: str, error: pydantic.ValidationError) -> str:
    """One line per problem: `models/gates.yaml: demand_review.overide_threshold_pct: unknown key`."""
    lines = []
    for problem in error.errors(include_url=False):
        loc = tuple(p for p in problem["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if problem["type"] == "extra_forbidden":
            message = "unknown key (a typo? see the comments in the file for the keys it takes)"
        else:
            message = problem["msg"]
            if "input" in problem and problem["type"] not in ("missing",):
                message += f" (got {problem['input']!r})"
        lines.append(f"{source}: {_where(loc)}: {message}")
    return "\n".join(lines)


def parse_settings(model: type[M], raw: Any, source: str) -> M:
    """Validate an already-parsed mapping (a YAML document, a test's dict) into `model`."""
    try:
        return model.model_validate(raw if raw is not None else {})
    except pydantic.ValidationError as exc:
        raise SettingsError(describe_validation_error(source, exc)) from None


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise SettingsError(f"{path}: settings file not found")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None


def load_settings_file(model: type[M], path: str | Path) -> M:
    """Read one YAML file into its model; an absent key takes the model's default."""
    return parse_settings(model, read_yaml(path), str(path))
