"""Project habits that keep a fresh clone working: the lock satisfies pyproject.toml, the
generated files are current, and the code passes the linter."""

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[")[0])] = version.strip()
    return pins


def test_the_lock_pins_a_version_of_every_requirement_that_satisfies_it():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pins = _pins()
    problems = []
    for requirement in wanted:
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not in requirements.lock")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} does not satisfy {requirement}")
    assert not problems, "run `make lock`: " + "; ".join(problems)


def test_generated_docs_and_dbt_yaml_are_current():
    done = subprocess.run([sys.executable, "-m", "sop_pipeline.docs", "--check"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_changed_registry_makes_the_readme_out_of_date():
    from sop_pipeline import docs, registry

    readme = docs.README.read_text()
    assert docs.render_readme(readme) == readme
    spec = registry.TABLES["consensus_demand"]
    registry.TABLES["consensus_demand"] = type(spec)(**{**spec.__dict__, "description": "changed"})
    try:
        assert docs.render_readme(readme) != readme
    finally:
        registry.TABLES["consensus_demand"] = spec


def test_the_code_passes_ruff():
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
