"""One partition per planning cycle. The current month is a partition (end_offset=1): the
cycle that starts this month is the one being planned. Cycles before 2020 are not plannable
(the first partition), so a mistyped year is refused instead of planned."""

import datetime as dt

import dagster as dg

from sop_pipeline.periods import add_months, cycle_label, cycle_month

FIRST_CYCLE = "2020-01"
cycle_partitions = dg.MonthlyPartitionsDefinition(start_date=f"{FIRST_CYCLE}-01", end_offset=1)
# Every asset plans one cycle per run (a cycle reads the one before it), the same policy for all:
# the UI's launch dialog then has nothing to warn about.
ONE_CYCLE_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def check_cycle(cycle: str, today: dt.date | None = None) -> str:
    """The cycle's label when it is one of the partitions (2020-01 to the current month), else a
    ValueError saying which cycles exist."""
    label = cycle_label(cycle)
    month = cycle_month(label)
    current = (today or dt.date.today()).replace(day=1)
    if not cycle_month(FIRST_CYCLE) <= month <= current:
        raise ValueError(
            f"cycle {label} is outside the planning calendar: cycles run from {FIRST_CYCLE} to "
            f"{cycle_label(current)} (this month); the next cycle, {cycle_label(add_months(current, 1))}, opens next month"
        )
    return label


# Every step that writes the DuckDB file takes a slot in this pool. With the pool limited to 1
# (dagster.yaml) the multiprocess executor runs writers one at a time; the warehouse's lock
# retry covers instances where no limit is configured.
WAREHOUSE_POOL = "duckdb_warehouse"

# Steps that read earlier cycles (accuracy scores their forecasts, the bridge starts from the
# last plan of record) declare it with this mapping, so the UI shows the dependency: the
# twelve cycles before this one, those that exist.
EARLIER_CYCLES = dg.TimeWindowPartitionMapping(start_offset=-12, end_offset=-1, allow_nonexistent_upstream_partitions=True)
