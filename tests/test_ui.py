"""The planner's path through the Dagster UI, in a real browser (issue 11).

`dagster dev` serves the code location on a small company with its own instance; headless
Chromium (Debian's `chromium` and `chromium-driver`, driven by Selenium) clicks what a planner
clicks. The path: a command-line run shows in the UI as materialized; "Materialize all" ends
green before anything is approved; a resources file with no capacity fails the supply
checkpoint and the run page names the finding; after fixing the file, the same launch from the
UI succeeds; every UI run republishes the BI copy.

Runs are waited for on the instance itself (the test process reads the same `DAGSTER_HOME`):
the UI shows the outcome, the instance says when there is one to look at.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from orchestration.paths import REPO_ROOT
from sop_pipeline.demo import write_demo_company

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# A run on a loaded 2-core machine: the waits are limits, not expectations.
RUN_LIMIT_SECONDS = 1200
SENSOR_LIMIT_SECONDS = 300


def _require_browser() -> None:
    if CHROMIUM and DRIVER:
        return
    if os.environ.get("CI"):
        pytest.fail("Chromium and chromedriver are missing: .ci/run installs them (apt-get install chromium chromium-driver)")
    pytest.skip("needs Debian's chromium and chromium-driver (installed by .ci/run)")


@dataclass
class UI:
    driver: object
    base: str
    home: Path
    data: Path
    warehouse: Path
    cycle: str

    @property
    def partition(self) -> str:
        return f"{self.cycle}-01"

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    def open(self, path: str, expect: str, limit: float = 90) -> str:
        """Open a page and wait until its text contains `expect`; returns the page text."""
        from selenium.webdriver.common.by import By

        self.driver.get(self.base + path)
        deadline = time.monotonic() + limit
        text = ""
        while time.monotonic() < deadline:
            self._dismiss_popups()
            text = self.driver.find_element(By.TAG_NAME, "body").text
            if expect in text:
                return text
            time.sleep(1)
        self.driver.save_screenshot(str(self.home / "failed_page.png"))
        raise AssertionError(f"{path}: {expect!r} not shown within {limit}s; the page shows:\n{text[:3000]}")

    def _click(self, element) -> None:
        """Click through a tooltip or toast that happens to lie over the button (Dagster's UI
        shows them on hover); the button is what a planner clicks."""
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)

    def _dismiss_popups(self) -> None:
        from selenium.webdriver.common.by import By

        for button in self.driver.find_elements(By.XPATH, "//button[normalize-space()='Skip' or normalize-space()='Dismiss']"):
            try:
                button.click()
            except Exception:  # noqa: BLE001 - a popup that went away by itself is fine
                pass

    def materialize_all_latest(self) -> str:
        """Lineage page, "Materialize all", partition "Latest" (the current cycle), launch; returns the run id."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        before = {r.run_id for r in self.instance().get_runs(limit=50)}
        self.open("/asset-groups", "Materialize all")
        wait = WebDriverWait(self.driver, 90)
        self._dismiss_popups()
        self._click(wait.until(ec.element_to_be_clickable((By.XPATH, "//button[starts-with(normalize-space(), 'Materialize all')]"))))
        # Dagster's "Join the Dagster community" dialog may open on a timer at any moment, also
        # a role=dialog: the launch dialog is the one that selects partitions.
        dialog = "//div[@role='dialog'][contains(., 'Partition selection')]"
        try:
            self._dismiss_popups()
            self._click(wait.until(ec.element_to_be_clickable((By.XPATH, f"{dialog}//button[normalize-space()='Latest']"))))
            wait.until(ec.text_to_be_present_in_element((By.XPATH, dialog), "1 partition"))
            self._click(wait.until(ec.element_to_be_clickable((By.XPATH, f"{dialog}//button[starts-with(normalize-space(), 'Launch')]"))))
        except Exception as error:
            self.driver.save_screenshot(str(self.home / "failed_dialog.png"))
            text = self.driver.find_element(By.TAG_NAME, "body").text
            raise AssertionError(f"the launch dialog did not take the partition: {error!r}\n{text[:3000]}") from error
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = [r for r in self.instance().get_runs(limit=50) if r.run_id not in before]
            if new:
                assert new[0].tags.get("dagster/partition") == self.partition
                return new[0].run_id
            time.sleep(2)
        raise AssertionError("the launch dialog started no run")

    def wait_for_run(self, run_id: str) -> dg.DagsterRun:
        deadline = time.monotonic() + RUN_LIMIT_SECONDS
        while time.monotonic() < deadline:
            run = self.instance().get_run_by_id(run_id)
            if run.is_finished:
                return run
            time.sleep(3)
        raise AssertionError(f"run {run_id} did not finish within {RUN_LIMIT_SECONDS}s")

    def wait_for_bi_copy_after(self, moment: float) -> None:
        bi = self.warehouse.parent / "sop_bi.duckdb"
        deadline = time.monotonic() + SENSOR_LIMIT_SECONDS
        while time.monotonic() < deadline:
            if bi.exists() and bi.stat().st_mtime > moment:
                return
            time.sleep(2)
        raise AssertionError(f"the BI copy was not republished within {SENSOR_LIMIT_SECONDS}s of the run")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster dev exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/server_info", timeout=5):
                return
        except OSError:
            time.sleep(2)
    raise AssertionError(f"dagster dev did not answer within 240s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("ui")
    cycle = dt.date.today().strftime("%Y-%m")  # "Latest" in the launch dialog is the current month
    data, warehouse, home = root / "data", root / "wh" / "sop.duckdb", root / "dagster_home"
    write_demo_company(data, skus=20, seed=11, cycle=cycle)
    env = {**os.environ, "DAGSTER_HOME": str(home), "SOP_DATA_DIR": str(data), "SOP_WAREHOUSE": str(warehouse)}
    bin_dir = Path(sys.executable).parent
    command = [str(bin_dir / "sop"), "run", "--cycle", cycle]
    cli = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_SECONDS)
    assert cli.returncode == 0, cli.stdout + cli.stderr

    port = _free_port()
    log = root / "dagster_dev.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the webserver's daemon and code server die with it
        )
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1000"):
        options.add_argument(arg)
    driver = None
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(base, proc, log)
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
        yield UI(driver, base, home, data, warehouse, cycle)
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _set_capacity(path: Path, hours: str | None) -> list[dict]:
    """Set every resource's regular and overtime hours to `hours` (None: leave); returns the original rows."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if hours is not None:
        changed = [{**r, "capacity_hours": hours, "overtime_hours": hours} for r in rows]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(changed)
    return rows


def test_a_command_line_run_shows_in_the_ui_as_materialized(ui):
    # The page shows its "Latest materialization" heading before it has loaded the event
    # (slowly on a loaded machine): wait for the cycle itself.
    page = ui.open("/assets/planning/consensus_demand", ui.partition)
    assert "Latest materialization" in page
    assert "Never materialized" not in page
    runs = ui.open("/runs", "monthly_cycle")
    assert "Success" in runs


def test_materialize_all_ends_green_without_an_approval_and_republishes_the_bi_copy(ui):
    started = time.time()
    run = ui.wait_for_run(ui.materialize_all_latest())
    assert run.status == dg.DagsterRunStatus.SUCCESS
    # the run page lists the plan-of-record step once its event log has loaded
    page = ui.open(f"/runs/{run.run_id}", "plan_of_record")
    assert "Success" in page
    # the plan of record waits for the executive: it says so instead of failing the run
    records = ui.instance().all_logs(run.run_id)
    warnings = [r.user_message for r in records if "plan of record for" in (r.user_message or "")]
    assert warnings and "not published" in warnings[0]
    ui.wait_for_bi_copy_after(started)


def test_a_broken_input_fails_its_checkpoint_and_the_fixed_file_reruns_green(ui):
    resources = ui.data / "resources.csv"
    original = _set_capacity(resources, "0")
    failed = ui.wait_for_run(ui.materialize_all_latest())
    assert failed.status == dg.DagsterRunStatus.FAILURE
    # the checkpoint's page shows the finding, for this cycle, with what to rerun
    checks = ui.open("/assets/planning/supply_plan?view=checks", f"resource {original[0]['resource']} has no capacity")
    assert "Failed" in checks and ui.partition in checks
    assert "run the cycle again from the ingestion" in checks

    with open(resources, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(original[0]))
        writer.writeheader()
        writer.writerows(original)
    started = time.time()
    fixed = ui.wait_for_run(ui.materialize_all_latest())
    assert fixed.status == dg.DagsterRunStatus.SUCCESS
    ui.wait_for_bi_copy_after(started)
