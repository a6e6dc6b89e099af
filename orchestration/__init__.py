"""The Dagster code location of the S&OP cycle (see `definitions.py`)."""

import warnings

# Dagster features this code location uses on purpose, which Dagster labels beta or preview:
# partitioned checkpoints (one outcome per cycle), the input files as observable sources, code references from an asset to the domain
# function that computes it, and dependencies on earlier cycles that may not exist yet.
for _feature in (
    "partitions_def on an AssetCheckSpec",
    "multi_observable_source_asset",
    "allow_nonexistent_upstream_partitions",
    "LocalFileCodeReference",
    "CodeReferencesMetadataValue",
):
    warnings.filterwarnings("ignore", message=f".*{_feature}")
