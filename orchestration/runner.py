"""Running one whole cycle in-process, the way `sop run` and `sop backfill` do.

The run uses the same job the schedule launches, so a scripted cycle and a UI-launched cycle
materialize exactly the same assets and checks. A logger turns Dagster's event stream into
one progress line per step; afterwards the outcome collects failed steps and failed
checkpoints with their explanations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR
from dagster._core.utils import make_new_run_id

from orchestration.instance import shared_instance
from orchestration.io import ORIGIN_TAG, PID_TAG, run_alive
from orchestration.paths import default_models_dir
from orchestration.resources import DataFolderResource, PlanningModelsResource, WarehouseResource
from sop_pipeline import runlock
from sop_pipeline.periods import cycle_month
from sop_pipeline.warehouse import WarehouseError, storage_problem

Printer = Callable[[str], None]
# Steps that change nothing in the warehouse unless they pass.
INGESTION_STEPS = ("input_files", "dbt_models")
# Failures whose message is written for the planner.
EXPLAINED = {"Failure", "InputError", "WarehouseError", "WarehouseBusy", "StaleMartsError", "SettingsError", "SupplyDataMissing"}
SKIP_REASONS = {"planning__plan_of_record_plan_of_record_is_approved": "nothing was published to check"}
STEP_NAMES = {"input_files": "input files refused", "dbt_models": "ingestion stopped"}


class _ProgressHandler(logging.Handler):
    def __init__(self, printer: Printer, labels: dict[str, str]):
        super().__init__(level=logging.DEBUG)
        self.printer = printer
        self.labels = labels
        self.started: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None)
        event = meta.get("dagster_event") if isinstance(meta, dict) else None
        if event is None:
            return
        step = self.labels.get(event.step_key or "", event.step_key or "")
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.monotonic()
            self.printer(f"  ... {step}")
        elif kind == "STEP_SUCCESS":
            self.printer(f"  ok  {step} ({time.monotonic() - self.started.get(step, time.monotonic()):.1f}s)")
        elif kind == "STEP_FAILURE":
            self.printer(f"  FAILED {step}")
        elif kind == "STEP_SKIPPED":
            why = SKIP_REASONS.get(event.step_key or "", "an upstream step or checkpoint failed")
            self.printer(f"  skip {step} ({why})")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                blocking = evaluation.severity == dg.AssetCheckSeverity.ERROR
                label = "CHECK FAILED" if blocking else "warning:"
                self.printer(f"  {label} {evaluation.asset_check_key.to_user_string()}")


def progress_logger(printer: Printer, labels: dict[str, str] | None = None) -> dg.LoggerDefinition:
    @dg.logger(description="One line per step of the cycle, for the command line.")
    def _progress(_init_context) -> logging.Logger:
        log = logging.Logger("sop_progress", level=logging.DEBUG)
        log.addHandler(_ProgressHandler(printer, labels or {}))
        return log

    return _progress


def step_labels() -> dict[str, str]:
    """Checkpoint steps by their checkpoint's name, not Dagster's op name for it."""
    from orchestration.definitions import CHECKS

    return {check.node_def.name: f"checkpoint {key.name}" for check in CHECKS for key in check.check_keys}


def _terminal_printer() -> Printer:
    """Print to the terminal while the run's own output goes to its log: a duplicate of the
    terminal's descriptor (fd 1 itself is redirected), or the current stream object when it
    has no descriptor (a test's capture)."""
    try:
        terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    except (OSError, AttributeError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        terminal = sys.stdout
    return lambda line: print(line, file=terminal, flush=True)


@contextlib.contextmanager
def _output_to(log_file) -> Iterator[None]:
    """Send everything the run prints to the log file: Python's streams and the process's own
    file descriptors (dbt's subprocess, HiGHS's banner, which write below Python)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        with contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
            yield
    finally:
        log_file.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@dataclass
class CycleOutcome:
    cycle: str
    success: bool
    failed_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    materialized: list[str] = field(default_factory=list)
    stopped_at: list[str] = field(default_factory=list)  # Dagster step keys that failed or whose checkpoint failed

    def explanation(self) -> str:
        return "\n".join(self.failed_steps + self.failed_checks)

    def advice(self) -> str:
        """What the planner does next, and what the stop left behind (docs/decisions.md, "A
        stopped cycle")."""
        if any(step in INGESTION_STEPS for step in self.stopped_at):
            return (
                f"Nothing in the warehouse changed (the marts, every cycle's tables and the BI copy are as they were). "
                f"Fix the file and run again: sop run --cycle {self.cycle}"
            )
        steps = ", ".join(dict.fromkeys(self.stopped_at)) or "a step"
        return (
            f"The cycle stopped at {steps}: its tables are kept for inspection, the cycle is marked stopped and cannot be "
            f"approved. Fix the input (or setting) and run again: sop run --cycle {self.cycle} reruns from the ingestion, "
            "so a fixed file is picked up."
        )


def _failure_message(event: dg.DagsterEvent) -> str:
    error = event.step_failure_data.error
    # The root cause (an InputError, a failed rule) is what a planner needs, not Dagster's wrapper.
    while error is not None and (error.cls_name or "").startswith("Dagster") and error.cause is not None:
        error = error.cause
    message = error.message.strip() if error is not None else "unknown error"
    if error is not None and error.cls_name in EXPLAINED:
        # Said for a person already (the input's file and row, a lock's holder, a full disk):
        # without the exception's class.
        message = re.sub(r"^[\w.]+: ", "", message, count=1)
        return f"{STEP_NAMES.get(event.step_key or '', event.step_key)}: {message}"
    return f"step {event.step_key} failed: {message}"


def run_cycle(
    cycle: str,
    data_dir: str,
    warehouse_path: str,
    models_dir: str | None = None,
    printer: Printer | None = None,
    instance: dg.DagsterInstance | None = None,
    job_name: str = "monthly_cycle",
    wait_seconds: float = 0.0,
) -> CycleOutcome:
    """Materialize every asset of one cycle's partition in-process and report the outcome.

    `job_name` selects the job: the monthly cycle, or `publish_plan_of_record` (what the
    approval sensor launches). The run owns the warehouse while it runs (`runlock`): when
    another live run owns it, this one waits up to `wait_seconds`, then stops with who holds it
    (`WarehouseBusy`). Each run writes its own log, `logs/<job>-<cycle>-<run>.log`, and
    `logs/<job>-<cycle>.log` links to the latest."""
    from orchestration.definitions import build_definitions

    if printer is None:
        printer = _terminal_printer()
    instance = instance or shared_instance()
    resources = {
        "warehouse": WarehouseResource(path=warehouse_path),
        "data_folder": DataFolderResource(path=data_dir),
        "planning_models": PlanningModelsResource(path=models_dir or default_models_dir()),
    }
    defs = build_definitions(resources=resources, loggers={"progress": progress_logger(printer, step_labels())})
    job = defs.resolve_job_def(job_name)
    partition_key = cycle_month(cycle).isoformat()
    run_id = make_new_run_id()
    try:
        runlock.claim(warehouse_path, run_id, partition_key[:7], "sop", wait_seconds=wait_seconds, alive=run_alive(instance), say=printer)
    except OSError as exc:
        raise WarehouseError(f"cannot write next to the warehouse {Path(warehouse_path).resolve()}: {storage_problem(exc) or exc}") from exc
    try:
        try:
            log_path = _run_log(warehouse_path, job_name, partition_key[:7], run_id)
        except OSError as exc:
            raise WarehouseError(
                f"cannot write the run's log next to {Path(warehouse_path).resolve()}: {storage_problem(exc) or exc}"
            ) from exc
        printer(f"  (step output, dbt's included, goes to {log_path})")
        # dbt and Dagster's own console output go to the run's log file; the progress logger
        # keeps the terminal to one line per step.
        with open(log_path, "w") as log_file, _output_to(log_file):
            result = job.execute_in_process(
                run_config={"loggers": {"progress": {}}},
                partition_key=partition_key,
                instance=instance,
                raise_on_error=False,
                run_id=run_id,
                tags={ORIGIN_TAG: "sop", PID_TAG: str(os.getpid())},
            )
    finally:
        runlock.release(warehouse_path, run_id)
    return _outcome(partition_key[:7], result)


def _run_log(warehouse_path: str, job_name: str, cycle: str, run_id: str) -> Path:
    """This run's log file, and the `<job>-<cycle>.log` link to the latest one."""
    folder = Path(warehouse_path).resolve().parent / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"{'cycle' if job_name == 'monthly_cycle' else job_name}-{cycle}"
    path = folder / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{run_id[:8]}.log"
    path.touch()
    latest = folder / f"{prefix}.log"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(path.name)
    return path


def _outcome(cycle: str, result: dg.ExecuteInProcessResult) -> CycleOutcome:
    outcome = CycleOutcome(cycle=cycle, success=result.success)
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # a blocking checkpoint failed: its evaluation below says what it found
            outcome.failed_steps.append(_failure_message(event))
            outcome.stopped_at.append(event.step_key or "")
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            outcome.materialized.append(event.asset_key.to_user_string())
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                description = evaluation.description or ""
                outcome.failed_checks.append(f"checkpoint {evaluation.asset_check_key.to_user_string()} failed:\n{description}".rstrip())
                outcome.stopped_at.append(evaluation.asset_check_key.asset_key.path[-1])
    outcome.success = outcome.success and not outcome.failed_checks
    return outcome
