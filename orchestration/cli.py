"""`sop`: the command line data engineers script the monthly cycle with (an interface over the
Dagster code location, hence in `orchestration/`).

Paths come from flags, then from SOP_DATA_DIR / SOP_WAREHOUSE, then from the repo defaults.
Dagster is imported only by the commands that run the graph, so `sop demo-data` stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestration.paths import default_data_dir, default_models_dir, default_warehouse
from sop_pipeline.periods import add_months, cycle_label, cycle_month


def _cycle(text: str) -> str:
    """A cycle as YYYY-MM (or Dagster's YYYY-MM-01) within the planning calendar, else a usage
    error before anything runs."""
    from orchestration.partitions import check_cycle

    try:
        return check_cycle(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _demo_cycle(text: str) -> str:
    try:
        return cycle_label(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def cmd_demo_data(args: argparse.Namespace) -> int:
    from sop_pipeline.demo import write_demo_company
    from sop_pipeline.settings import load_settings

    started = time.perf_counter()
    horizon = load_settings(args.models or default_models_dir()).calendar.horizon_months
    paths = write_demo_company(args.out, skus=args.skus, seed=args.seed, cycle=args.cycle, horizon_months=horizon)
    print(
        f"demo company ({args.skus} SKUs, seed {args.seed}, cycle {args.cycle}) written to {Path(args.out).resolve()} "
        f"in {time.perf_counter() - started:.1f}s:"
    )
    for name, path in paths.items():
        print(f"  {name:<14} {path.stat().st_size / 1024:>9.1f} KiB")
    return 0


def _run_one(cycle: str, data_dir: str, warehouse: str, models_dir: str | None, wait_seconds: float = 0.0) -> bool:
    from orchestration.runner import run_cycle

    print(f"cycle {cycle}: inputs {Path(data_dir).resolve()}, warehouse {Path(warehouse).resolve()}")
    started = time.perf_counter()
    outcome = run_cycle(cycle, data_dir, warehouse, models_dir=models_dir, wait_seconds=wait_seconds)
    if outcome.success:
        print(f"cycle {cycle}: done in {time.perf_counter() - started:.0f}s, {len(outcome.materialized)} assets materialized")
        _print_summary(cycle, warehouse)
        _publish_bi(warehouse)
        return True
    print(f"cycle {cycle}: STOPPED after {time.perf_counter() - started:.0f}s", file=sys.stderr)
    print(outcome.explanation(), file=sys.stderr)
    print(outcome.advice(), file=sys.stderr)
    return False


def _print_summary(cycle: str, warehouse: str) -> None:
    from sop_pipeline.executive.status import cycle_summary
    from sop_pipeline.warehouse import connect

    with connect(warehouse, read_only=True) as con:
        for line in cycle_summary(con, cycle):
            print(f"  {line}")
    print(f"  warehouse: {Path(warehouse).resolve()} (charts in {Path(warehouse).resolve().parent / 'charts' / cycle})")


def _publish_bi(warehouse: str) -> None:
    """BI tools read a copy that is replaced atomically, only after a successful run: they
    never see a half-written cycle and never hold a lock the pipeline needs."""
    from sop_pipeline.bi import publish_bi_copy

    target = publish_bi_copy(warehouse)
    print(f"  BI copy published: {target}")


def _refuse_missing(warehouse: str, cycle: str, command: str) -> bool:
    """True (after saying so) when there is no warehouse: `approve` and `status` never create one."""
    if Path(warehouse).exists():
        return False
    print(
        f"{command} refused: no warehouse at {Path(warehouse).resolve()}; run `sop run --cycle {cycle}` first "
        "(or pass the right --warehouse)",
        file=sys.stderr,
    )
    return True


@contextmanager
def _meeting_record(args: argparse.Namespace, what: str):
    """Own the warehouse while a meeting's record (approval, decision) is written: a run in
    progress would make an approval cover a plan that is neither the old nor the new one.
    Yields a connection, or None after saying why the record was refused."""
    from dagster._core.utils import make_new_run_id

    from orchestration.instance import shared_instance
    from orchestration.io import run_alive
    from sop_pipeline import runlock
    from sop_pipeline.warehouse import connect

    holder = make_new_run_id()
    try:
        runlock.claim(args.warehouse, holder, args.cycle, "sop", alive=run_alive(shared_instance()))
    except runlock.WarehouseBusy as exc:
        print(f"{what} refused: {exc}", file=sys.stderr)
        yield None
        return
    try:
        with connect(args.warehouse) as con:
            yield con
    finally:
        runlock.release(args.warehouse, holder)


def _write_record(args: argparse.Namespace, what: str, write: Callable[[Any], Any]) -> tuple[bool, Any]:
    """Write a meeting's record (`write(con)`) while owning the warehouse: (True, its result),
    or (False, None) after one line saying why it was refused (no warehouse, a run owns it,
    or the record's own rules: `write` raises ValueError) with nothing written."""
    if _refuse_missing(args.warehouse, args.cycle, what):
        return False, None
    with _meeting_record(args, what) as con:
        if con is None:
            return False, None
        try:
            return True, write(con)
        except ValueError as exc:
            print(f"{what} refused: {exc}", file=sys.stderr)
            return False, None


def cmd_approve(args: argparse.Namespace) -> int:
    from orchestration.graph import step_graph
    from orchestration.instance import shared_instance
    from orchestration.runner import run_cycle
    from sop_pipeline.executive.governance import record_decision

    ok, decision = _write_record(
        args, "approval", lambda con: record_decision(con, args.cycle, args.scenario, args.by, args.note or "", graph=step_graph())
    )
    if not ok:
        return 2
    instance = shared_instance()
    print(f"cycle {args.cycle}: {args.scenario} approved by {args.by} for plan version {decision['plan_version'][:12]}")
    # What the approval sensor does in a running Dagster deployment, done here in-process.
    outcome = run_cycle(
        args.cycle,
        args.data,
        args.warehouse,
        models_dir=args.models,
        job_name="publish_plan_of_record",
        instance=instance,
        wait_seconds=args.wait,
    )
    if not outcome.success:
        print(outcome.explanation(), file=sys.stderr)
        return 1
    if "planning/plan_of_record" not in outcome.materialized:
        print(
            f"cycle {args.cycle}: the plan of record was not published (the plan changed after the approval?); "
            f"see sop status --cycle {args.cycle}",
            file=sys.stderr,
        )
        return 1
    print(f"cycle {args.cycle}: plan of record published ({args.scenario})")
    _publish_bi(args.warehouse)
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from sop_pipeline.executive.decisions import close_decision, record_action

    if _refuse_missing(args.warehouse, args.cycle, "decision"):
        return 2
    if not args.close and not (args.action and args.owner and args.due):
        print("decision refused: give --action, --owner and --due (or --close DECISION_ID)", file=sys.stderr)
        return 2

    def write(con):
        if args.close:
            return close_decision(con, args.cycle, args.close, args.by, args.note or "")
        return record_action(
            con,
            args.cycle,
            args.action,
            args.owner,
            args.due,
            args.by,
            kind=args.kind,
            exception_id=args.exception,
            scenario=args.scenario,
            note=args.note or "",
        )

    ok, row = _write_record(args, "decision", write)
    if not ok:
        return 2
    if args.close:
        print(f"cycle {args.cycle}: {args.close} closed by {args.by}")
    else:
        print(_recorded(args.cycle, row) + " The next cycles follow it up (planning.decision_followup).")
    _publish_bi(args.warehouse)
    return 0


def _recorded(cycle: str, row: dict) -> str:
    about = f" on {row['exception_id']}" if row["exception_id"] else ""
    head = f"cycle {cycle}: {row['decision_id']} recorded ({row['decision']}{about})"
    return f"{head}: {row['action']}; owner {row['owner']}, due {row['due_cycle']}."


def cmd_demo_meeting(args: argparse.Namespace) -> int:
    from sop_pipeline.demo.meeting import hold_meeting

    ok, rows = _write_record(args, "demo meeting", lambda con: hold_meeting(con, args.cycle, args.by))
    if not ok:
        return 2
    for row in rows:
        print(_recorded(args.cycle, row))
    _publish_bi(args.warehouse)
    return 0


def cmd_decisions(args: argparse.Namespace) -> int:
    from sop_pipeline.executive.decisions import decisions_report
    from sop_pipeline.warehouse import connect

    if _refuse_missing(args.warehouse, args.cycle, "decisions"):
        return 1
    with connect(args.warehouse, read_only=True) as con:
        for line in decisions_report(con, args.cycle):
            print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from orchestration.graph import step_graph
    from orchestration.instance import shared_instance
    from orchestration.io import run_alive
    from sop_pipeline import runlock
    from sop_pipeline.executive.status import status_report
    from sop_pipeline.warehouse import connect

    if _refuse_missing(args.warehouse, args.cycle, "status"):
        return 1
    holder = runlock.current(args.warehouse, alive=run_alive(shared_instance()))
    with connect(args.warehouse, read_only=True) as con:
        for line in status_report(con, args.cycle, graph=step_graph()):
            print(line)
    if holder is not None:
        print(f"in progress: {holder.describe()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return 0 if _run_one(args.cycle, args.data, args.warehouse, args.models, args.wait) else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    start, end = cycle_month(args.start), cycle_month(args.end)
    if end < start:
        print(f"--to {args.end} is before --from {args.start}", file=sys.stderr)
        return 2
    month = start
    while month <= end:
        if not _run_one(cycle_label(month), args.data, args.warehouse, args.models, args.wait):
            return 1
        month = add_months(month, 1)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sop", description="Monthly Sales & Operations Planning cycle.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="write a deterministic demo company in the input contract")
    demo.add_argument("--out", required=True, help="folder to write the CSV files into")
    demo.add_argument("--skus", type=int, default=300)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--cycle", type=_demo_cycle, default="2026-11", help="first plan month; history ends the month before")
    demo.add_argument("--models", default=os.environ.get("SOP_MODELS_DIR"), help="settings folder whose calendar sets the horizon")
    demo.set_defaults(func=cmd_demo_data)

    def paths(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default=default_data_dir(), help="input folder (default: $SOP_DATA_DIR)")
        p.add_argument("--warehouse", default=default_warehouse(), help="DuckDB file (default: $SOP_WAREHOUSE)")
        p.add_argument("--models", default=os.environ.get("SOP_MODELS_DIR"), help="planning settings folder (default: models/)")
        p.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="while another run owns the warehouse, wait this long for it (default: refuse at once)",
        )

    run = sub.add_parser("run", help="materialize every step of one cycle, in-process")
    run.add_argument("--cycle", type=_cycle, required=True)
    paths(run)
    run.set_defaults(func=cmd_run)

    backfill = sub.add_parser("backfill", help="run consecutive cycles, oldest first")
    backfill.add_argument("--from", dest="start", type=_cycle, required=True)
    backfill.add_argument("--to", dest="end", type=_cycle, required=True)
    paths(backfill)
    backfill.set_defaults(func=cmd_backfill)

    approve = sub.add_parser("approve", help="record an executive's approval and publish the plan of record")
    approve.add_argument("--cycle", type=_cycle, required=True)
    approve.add_argument("--scenario", default="baseline")
    approve.add_argument("--by", required=True, help="who approves")
    approve.add_argument("--note", default="")
    paths(approve)
    approve.set_defaults(func=cmd_approve)

    decide = sub.add_parser(
        "decide",
        help="record a meeting's action or accepted risk (owner, due cycle, the exception it answers), or close one",
    )
    decide.add_argument("--cycle", type=_cycle, required=True, help="the cycle whose meeting decides")
    decide.add_argument("--action", help="what will be done, or the risk accepted")
    decide.add_argument("--owner", help="who carries it out")
    decide.add_argument("--due", type=_cycle, help="the cycle by which it is done, YYYY-MM")
    decide.add_argument("--kind", choices=("action", "accepted_risk"), default="action")
    decide.add_argument("--exception", help="the exception_id it answers (see `sop decisions --cycle`)")
    decide.add_argument("--scenario", help="the scenario it is about (default baseline)")
    decide.add_argument("--close", metavar="DECISION_ID", help="close an earlier decision instead (e.g. D2026-10-01)")
    decide.add_argument("--by", required=True, help="who decides")
    decide.add_argument("--note", default="")
    paths(decide)
    decide.set_defaults(func=cmd_decide)

    meeting = sub.add_parser(
        "demo-meeting",
        help="the demo company only: record the decisions its executives take on a cycle's largest exceptions",
    )
    meeting.add_argument("--cycle", type=_cycle, required=True)
    meeting.add_argument("--by", required=True, help="who decides")
    paths(meeting)
    meeting.set_defaults(func=cmd_demo_meeting)

    decisions = sub.add_parser("decisions", help="a cycle's exceptions to decide on, its decisions, and earlier ones' follow-up")
    decisions.add_argument("--cycle", type=_cycle, required=True)
    paths(decisions)
    decisions.set_defaults(func=cmd_decisions)

    status = sub.add_parser("status", help="where a cycle stands: checkpoints, approval, what waits for whom")
    status.add_argument("--cycle", type=_cycle, required=True)
    paths(status)
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    from sop_pipeline.runlock import WarehouseBusy
    from sop_pipeline.settings.base import SettingsError
    from sop_pipeline.warehouse import WarehouseError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (WarehouseBusy, WarehouseError, SettingsError) as exc:
        # Said in one line: who holds the warehouse, which file cannot be written and why, which
        # setting is wrong. Nothing was changed.
        print(f"sop {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
