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
from pathlib import Path

from orchestration.paths import default_data_dir, default_models_dir, default_warehouse
from sop_pipeline.periods import add_months, cycle_label, cycle_month


def _cycle(text: str) -> str:
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


def _run_one(cycle: str, data_dir: str, warehouse: str, models_dir: str | None) -> bool:
    from orchestration.runner import run_cycle

    print(f"cycle {cycle}: inputs {Path(data_dir).resolve()}, warehouse {Path(warehouse).resolve()}")
    started = time.perf_counter()
    outcome = run_cycle(cycle, data_dir, warehouse, models_dir=models_dir)
    if outcome.success:
        print(f"cycle {cycle}: done in {time.perf_counter() - started:.0f}s, {len(outcome.materialized)} assets materialized")
        _print_summary(cycle, warehouse)
        _publish_bi(warehouse)
        return True
    print(f"cycle {cycle}: STOPPED after {time.perf_counter() - started:.0f}s", file=sys.stderr)
    print(outcome.explanation(), file=sys.stderr)
    print("Earlier cycles and tables written before the failure are unchanged; fix the input and rerun.", file=sys.stderr)
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


def cmd_approve(args: argparse.Namespace) -> int:
    from orchestration.runner import run_cycle
    from sop_pipeline.executive.governance import record_decision
    from sop_pipeline.warehouse import connect

    with connect(args.warehouse) as con:
        try:
            decision = record_decision(con, args.cycle, args.scenario, args.by, args.note or "")
        except ValueError as exc:
            print(f"approval refused: {exc}", file=sys.stderr)
            return 2
    print(f"cycle {args.cycle}: {args.scenario} approved by {args.by} for plan version {decision['plan_version'][:12]}")
    # What the approval sensor does in a running Dagster deployment, done here in-process.
    outcome = run_cycle(args.cycle, args.data, args.warehouse, models_dir=args.models, job_name="publish_plan_of_record")
    if not outcome.success:
        print(outcome.explanation(), file=sys.stderr)
        return 1
    print(f"cycle {args.cycle}: plan of record published ({args.scenario})")
    _publish_bi(args.warehouse)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sop_pipeline.executive.status import status_report
    from sop_pipeline.warehouse import connect

    if not Path(args.warehouse).exists():
        print(f"no warehouse at {args.warehouse}: run `sop run --cycle {args.cycle}` first", file=sys.stderr)
        return 1
    with connect(args.warehouse, read_only=True) as con:
        for line in status_report(con, args.cycle):
            print(line)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return 0 if _run_one(args.cycle, args.data, args.warehouse, args.models) else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    start, end = cycle_month(args.start), cycle_month(args.end)
    if end < start:
        print(f"--to {args.end} is before --from {args.start}", file=sys.stderr)
        return 2
    month = start
    while month <= end:
        if not _run_one(cycle_label(month), args.data, args.warehouse, args.models):
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
    demo.add_argument("--cycle", type=_cycle, default="2026-11", help="first plan month; history ends the month before")
    demo.add_argument("--models", default=os.environ.get("SOP_MODELS_DIR"), help="settings folder whose calendar sets the horizon")
    demo.set_defaults(func=cmd_demo_data)

    def paths(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", default=default_data_dir(), help="input folder (default: $SOP_DATA_DIR)")
        p.add_argument("--warehouse", default=default_warehouse(), help="DuckDB file (default: $SOP_WAREHOUSE)")
        p.add_argument("--models", default=os.environ.get("SOP_MODELS_DIR"), help="planning settings folder (default: models/)")

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

    status = sub.add_parser("status", help="where a cycle stands: checkpoints, approval, what waits for whom")
    status.add_argument("--cycle", type=_cycle, required=True)
    paths(status)
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
