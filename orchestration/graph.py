"""The cycle's steps as the governance reads them, derived from the asset graph.

`sop status`, the approval and the plan of record decide whether a cycle is one plan by
comparing when each step last wrote (planning.step_runs). Which step depends on which, and
which checkpoint gates which step, is what the Dagster graph already says; this module reads it
off the definitions so the rule is never written twice.
"""

from __future__ import annotations

import functools

import dagster as dg

from sop_pipeline.executive.governance import StepGraph

# Steps that write nothing of the cycle's plan: validation only, or published only after an approval.
NOT_IN_A_CYCLE = {"input_files", "plan_of_record"}


def _earlier_cycles(mapping: dg.PartitionMapping | None) -> bool:
    return isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.end_offset < 0


@functools.cache
def step_graph() -> StepGraph:
    from orchestration.definitions import CHECKS, defs

    graph = defs.resolve_asset_graph()
    op_of: dict[dg.AssetKey, str] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            op_of[key] = node.assets_def.node_def.name
    direct: dict[str, set[str]] = {}
    for key, op in op_of.items():
        assets_def = graph.get(key).assets_def
        for parent in graph.get(key).parent_keys:
            if parent not in op_of or op_of[parent] == op or _earlier_cycles(assets_def.get_partition_mapping(parent)):
                continue
            direct.setdefault(op, set()).add(op_of[parent])
    steps = sorted({op for op in op_of.values() if op not in NOT_IN_A_CYCLE})
    upstream = {step: frozenset(_closure(step, direct) - NOT_IN_A_CYCLE) for step in steps}
    order = tuple(sorted(steps, key=lambda s: (len(upstream[s]), s)))
    checkpoints = {}
    for check in CHECKS:
        for spec in check.check_specs:
            if spec.blocking and op_of.get(spec.asset_key) in steps:
                checkpoints[spec.name] = op_of[spec.asset_key]
    return StepGraph(upstream=upstream, checkpoints=checkpoints, order=order)


def _closure(step: str, direct: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(direct.get(step, ()))
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(direct.get(parent, ()))
    return seen
