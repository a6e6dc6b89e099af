"""Decisions beyond approvals (`sop decide`, the UI's decide_job) and their follow-up in the next
cycle, on real pipeline runs: decisions taken in the 2026-10 meeting, then cycle 2026-11 run
again, as a company does month after month."""

import re
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import CYCLE, EARLIER_CYCLE, q, run_ok

from orchestration.cli import main as sop
from sop_pipeline.bi import default_bi_path


def _paths(data: Path, warehouse: Path) -> list[str]:
    return ["--data", str(data), "--warehouse", str(warehouse)]


def _exceptions(warehouse: Path, cycle: str) -> dict[str, float]:
    rows = q(warehouse, f"select exception_id, money from planning.exceptions where cycle = '{cycle}' order by rank")
    return dict(rows.rows())


def _decide(paths: list[str], *args: str) -> int:
    return sop(["decide", "--by", "Dana Whitfield (CEO)", *args, *paths])


def test_a_decision_is_followed_up_in_the_next_cycle(warehouse_copy, demo_dir, capsys):
    paths = _paths(demo_dir, warehouse_copy)
    then, now = _exceptions(warehouse_copy, EARLIER_CYCLE), _exceptions(warehouse_copy, CYCLE)
    kept = [e for e in then if e in now]  # still found in 2026-11
    gone = [e for e in then if e not in now]  # no longer above materiality in 2026-11
    assert kept and gone, (then, now)
    assert (
        _decide(
            paths,
            "--cycle",
            EARLIER_CYCLE,
            "--action",
            "Fix it this month",
            "--owner",
            "Supply planning",
            "--due",
            "2026-10",
            "--exception",
            kept[0],
        )
        == 0
    )
    assert (
        _decide(
            paths,
            "--cycle",
            EARLIER_CYCLE,
            "--kind",
            "accepted_risk",
            "--action",
            "Accept it",
            "--owner",
            "Finance",
            "--due",
            "2026-12",
            "--exception",
            kept[-1],
        )
        == 0
    )
    assert (
        _decide(
            paths, "--cycle", EARLIER_CYCLE, "--action", "Act on it", "--owner", "Operations", "--due", "2026-12", "--exception", gone[0]
        )
        == 0
    )
    assert _decide(paths, "--cycle", EARLIER_CYCLE, "--action", "Review the price list", "--owner", "Finance", "--due", "2026-11") == 0
    assert _decide(paths, "--cycle", EARLIER_CYCLE, "--close", "D2026-10-04", "--note", "price list reviewed") == 0
    ids = q(warehouse_copy, "select decision_id from planning.decisions where decision_id is not null order by decision_id")
    assert ids["decision_id"].to_list() == [f"D2026-10-0{n}" for n in range(1, 5)]

    run_ok(CYCLE, demo_dir, warehouse_copy)

    now = _exceptions(warehouse_copy, CYCLE)  # the rerun's list
    follow = {
        r["decision_id"]: r for r in q(warehouse_copy, f"select * from planning.decision_followup where cycle = '{CYCLE}'").to_dicts()
    }
    assert set(follow) == {"D2026-10-01", "D2026-10-02", "D2026-10-03", "D2026-10-04"}
    # Due 2026-10 and its exception is still there in 2026-11: overdue.
    assert follow["D2026-10-01"]["status"] == "overdue"
    assert follow["D2026-10-01"]["money_when_raised"] == pytest.approx(then[kept[0]])
    assert follow["D2026-10-01"]["money_now"] == pytest.approx(now[kept[0]])
    assert f"{then[kept[0]]:,.0f} in 2026-10" in follow["D2026-10-01"]["outcome"]
    # An accepted risk due later stays open, with its money now.
    assert follow["D2026-10-02"]["status"] == "open" and follow["D2026-10-02"]["money_now"] == pytest.approx(now[kept[-1]])
    # Its exception left the list: resolved, nothing at stake now.
    assert follow["D2026-10-03"]["status"] == "resolved" and follow["D2026-10-03"]["money_now"] is None
    assert "no longer above materiality" in follow["D2026-10-03"]["outcome"]
    assert follow["D2026-10-04"]["status"] == "closed" and "price list reviewed" in follow["D2026-10-04"]["outcome"]

    # The meeting sees it: `sop decisions`, page 1 of the pack (after the approval rewrites it), the BI copy.
    capsys.readouterr()
    assert sop(["decisions", "--cycle", CYCLE, *paths]) == 0
    out = capsys.readouterr().out
    assert "D2026-10-01 OVERDUE" in out and "D2026-10-03 RESOLVED" in out and kept[0] in out
    assert sop(["approve", "--cycle", CYCLE, "--by", "Dana Whitfield (CEO)", *paths]) == 0
    pdf = warehouse_copy.parent / "charts" / CYCLE / f"review_pack_{CYCLE}.pdf"
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "2", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Approved: scenario baseline by Dana Whitfield (CEO)" in text
    page_one = text.split("\f")[0]
    assert "D2026-10-01" in page_one and "overdue" in page_one and "D2026-10-02" in page_one
    assert "D2026-10-04" not in page_one  # closed: not among the decisions still open
    # The follow-up page lists every decision with its status, closed and resolved ones too.
    whole = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    followup = next(p for p in whole.split("\f") if p.lstrip().startswith("Follow-up of earlier decisions"))
    for decision_id, row in follow.items():
        line = next(t for t in followup.splitlines() if decision_id in t)
        assert re.search(rf"\b{row['status']}\b", line), (decision_id, line)
    assert "1 overdue, 1 open, 1 resolved, 1 closed." in " ".join(followup.split())
    bi = q(default_bi_path(warehouse_copy), f"select decision_id, status from bi.decision_followup where cycle = '{CYCLE}' order by 1")
    assert bi.rows() == [("D2026-10-01", "overdue"), ("D2026-10-02", "open"), ("D2026-10-03", "resolved"), ("D2026-10-04", "closed")]


def test_a_decision_that_cannot_be_followed_up_is_refused_and_nothing_is_written(warehouse_copy, demo_dir, capsys):
    paths = _paths(demo_dir, warehouse_copy)
    first = next(iter(_exceptions(warehouse_copy, EARLIER_CYCLE)))
    before = q(warehouse_copy, "select count(*) as n from planning.decisions")["n"][0] if _has_decisions(warehouse_copy) else 0
    refusals = [
        (
            ["--cycle", CYCLE, "--action", "a", "--owner", "o", "--due", "2026-12", "--exception", "capacity:NOWHERE"],
            "is not on cycle 2026-11's list",
        ),
        (["--cycle", CYCLE, "--action", "a", "--owner", "o", "--due", "2026-10"], "due cycle 2026-10 is before the cycle 2026-11"),
        (["--cycle", CYCLE, "--action", "a", "--due", "2026-12"], "give --action, --owner and --due"),
        (["--cycle", CYCLE, "--close", "D2026-11-07"], "no decision 'D2026-11-07'"),
    ]
    for args, message in refusals:
        capsys.readouterr()
        assert _decide(paths, *args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    after = q(warehouse_copy, "select count(*) as n from planning.decisions")["n"][0] if _has_decisions(warehouse_copy) else 0
    assert after == before
    # Closing twice is refused too, once the first closing is recorded.
    assert _decide(paths, "--cycle", EARLIER_CYCLE, "--action", "a", "--owner", "o", "--due", "2026-11", "--exception", first) == 0
    assert _decide(paths, "--cycle", CYCLE, "--close", "D2026-10-01") == 0
    capsys.readouterr()
    assert _decide(paths, "--cycle", CYCLE, "--close", "D2026-10-01") == 2
    assert "already closed in 2026-11" in capsys.readouterr().err


def _has_decisions(warehouse: Path) -> bool:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return bool(con.execute("select count(*) from information_schema.tables where table_name = 'decisions'").fetchone()[0])
    finally:
        con.close()


def test_a_decision_from_the_ui_is_a_job_with_run_config(warehouse_copy):
    from orchestration.definitions import defs
    from orchestration.resources import WarehouseResource

    job = defs.resolve_job_def("decide_job")
    first = next(iter(_exceptions(warehouse_copy, CYCLE)))
    config = {"cycle": CYCLE, "by": "Dana (CEO)", "action": "Qualify an alternate routing", "owner": "Operations", "due": "2027-01"}
    resources = {"warehouse": WarehouseResource(path=str(warehouse_copy))}
    ok = job.execute_in_process(
        run_config={"ops": {"record_meeting_decision": {"config": {**config, "exception": first}}}}, resources=resources
    )
    assert ok.success
    bad = job.execute_in_process(
        run_config={"ops": {"record_meeting_decision": {"config": {**config, "exception": "capacity:NOWHERE"}}}},
        resources=resources,
        raise_on_error=False,
    )
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
    assert "decision refused" in str(failure.event_specific_data.error.message)
    rows = q(
        warehouse_copy, "select decision_id, decision, owner, due_cycle, exception_id from planning.decisions where decision_id is not null"
    )
    assert rows.rows() == [("D2026-11-01", "action", "Operations", "2027-01", first)]


def test_the_demo_meeting_decides_on_the_largest_finding_of_each_kind(warehouse_copy, capsys):
    """`make demo`'s meeting: at least three decisions, each on the baseline's largest
    exception of its kind, owned by that exception's owner."""
    assert sop(["demo-meeting", "--cycle", EARLIER_CYCLE, "--by", "Dana (CEO)", "--warehouse", str(warehouse_copy)]) == 0
    rows = q(
        warehouse_copy,
        f"""select d.decision_id, d.decision, d.owner, e.owner as exception_owner, e.kind, e.money,
                   (select max(money) from planning.exceptions x
                     where x.cycle = e.cycle and x.kind = e.kind and x.in_baseline) as largest
            from planning.decisions d join planning.exceptions e on e.cycle = d.cycle and e.exception_id = d.exception_id
            where d.cycle = '{EARLIER_CYCLE}' order by d.decision_id""",
    )
    assert rows.height >= 3, rows
    assert (rows["owner"] == rows["exception_owner"]).all()
    assert (rows["money"] == rows["largest"]).all()
    assert "accepted_risk" in rows["decision"].to_list() and "action" in rows["decision"].to_list()
    assert capsys.readouterr().out.count(f"cycle {EARLIER_CYCLE}: D{EARLIER_CYCLE}-0") == rows.height
