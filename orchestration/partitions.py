"""One partition per planning cycle. The current month is a partition (end_offset=1): the
cycle that starts this month is the one being planned."""

import dagster as dg

cycle_partitions = dg.MonthlyPartitionsDefinition(start_date="2023-01-01", end_offset=1)

# Every step that writes the DuckDB file takes a slot in this pool. With the pool limited to 1
# (dagster.yaml) the multiprocess executor runs writers one at a time; the warehouse's lock
# retry covers instances where no limit is configured.
WAREHOUSE_POOL = "duckdb_warehouse"

# Steps that read earlier cycles (accuracy scores their forecasts, the bridge starts from the
# last plan of record) declare it with this mapping, so the UI shows the dependency: the
# twelve cycles before this one, those that exist.
EARLIER_CYCLES = dg.TimeWindowPartitionMapping(start_offset=-12, end_offset=-1, allow_nonexistent_upstream_partitions=True)
