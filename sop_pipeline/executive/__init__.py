"""Executive review: KPIs and exceptions (`kpis`, `exceptions`), the governance of a cycle's
plan (`governance`: plan version, approvals, plan of record, checkpoints) and where a cycle
stands (`status`).

The executive meeting does not re-plan; it chooses. It sees every scenario's headline numbers
side by side, only the exceptions worth its time (above the materiality thresholds in
`models/gates.yaml`, ranked by money), and approves one scenario of one plan version.
"""
