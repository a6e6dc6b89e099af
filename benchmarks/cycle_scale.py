"""The whole monthly cycle at several company sizes: wall time and peak memory per step.

For each size it generates a demo company (`sop demo-data --skus N`), runs one cycle the way
`sop run` does (validation, dbt, every review step, the review pack), and prints per step the
wall time and the peak resident memory of the run's process tree (the run and the worker
processes of the forecast and the scenario solves), then the total. With `--workers 1,2` it
runs each size once per worker count (forecast `execution.n_jobs` and supply
`execution.workers` both set to it, in a copy of `models/`) and prints the speed-up of the
largest over the smallest on the same run. Each run is its own process, so one size's memory
does not count towards the next.

    .venv/bin/python benchmarks/cycle_scale.py 1000 5000 20000 [--workers 1,2] [--cycle 2026-11]

Wall times depend on what else the machine runs: the script prints the load average next to
each run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP_START = re.compile(r"^\s+\.\.\. (.+)$")
STEP_DONE = re.compile(r"^\s+ok\s+(.+?) \(([0-9.]+)s\)$")


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


class Sampler:
    """Samples the process tree's RSS every `every` seconds and keeps the peak per step."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.step, self.peaks, self.overall = every, "(start-up)", {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_bytes(os.getpid())
            self.overall = max(self.overall, rss)
            self.peaks[self.step] = max(self.peaks.get(self.step, 0), rss)
            self._stop.wait(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def models_with_workers(workers: int, into: Path) -> Path:
    """A copy of `models/` whose forecast and supply use `workers` processes."""
    import yaml

    target = into / "models"
    shutil.copytree(ROOT / "models", target)
    for name, section, key in (("forecast.yaml", "execution", "n_jobs"), ("supply.yaml", "execution", "workers")):
        path = target / name
        doc = yaml.safe_load(path.read_text())
        doc.setdefault(section, {})[key] = workers
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def one_run(skus: int, workers: int, cycle: str, seed: int) -> dict:
    """Generate the company, run one cycle, return per-step figures (runs in a child process)."""
    from orchestration.runner import run_cycle
    from sop_pipeline.demo import write_demo_company

    work = Path(tempfile.mkdtemp(prefix=f"cycle_scale_{skus}_"))
    os.environ["DAGSTER_HOME"] = str(work / "dagster_home")
    (work / "dagster_home").mkdir()
    try:
        started = time.perf_counter()
        write_demo_company(work / "data", skus=skus, seed=seed, cycle=cycle)
        generated = time.perf_counter() - started
        models = models_with_workers(workers, work)
        steps: dict[str, float] = {}
        with Sampler() as sampler:

            def printer(line: str) -> None:
                if m := STEP_DONE.match(line):
                    steps[m.group(1)] = float(m.group(2))
                    sampler.step = "(between steps)"
                elif m := STEP_START.match(line):
                    sampler.step = m.group(1)

            t0 = time.perf_counter()
            outcome = run_cycle(cycle, str(work / "data"), str(work / "warehouse" / "sop.duckdb"), models_dir=str(models), printer=printer)
            wall = time.perf_counter() - t0
        return {
            "skus": skus,
            "workers": workers,
            "success": outcome.success,
            "explanation": outcome.explanation(),
            "generate_seconds": generated,
            "wall_seconds": wall,
            "steps": steps,
            "peak_rss": sampler.peaks,
            "overall_peak_rss": sampler.overall,
            "load": os.getloadavg(),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f}"


def report(runs: list[dict]) -> None:
    steps = list(dict.fromkeys(s for r in runs for s in r["steps"]))
    heads = [f"{r['skus']:,} SKUs, {r['workers']} w" for r in runs]
    print("\nwall seconds per step (peak RSS of the process tree, GiB)")
    print("| step | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(runs))
    for step in steps:
        cells = [f"{r['steps'][step]:.1f} ({_gib(r['peak_rss'].get(step, 0))})" if step in r["steps"] else "" for r in runs]
        print(f"| {step} | " + " | ".join(cells) + " |")
    print("| **whole cycle** | " + " | ".join(f"**{r['wall_seconds']:.1f}** ({_gib(r['overall_peak_rss'])})" for r in runs) + " |")
    print("| load average at the end | " + " | ".join(f"{r['load'][0]:.1f}" for r in runs) + " |")
    sizes = sorted({r["skus"] for r in runs})
    if len(sizes) > 1:
        print("\ngrowth per step, time ratio against the smallest size at the same workers (SKU ratio in brackets)")
        for workers in sorted({r["workers"] for r in runs}):
            same = {r["skus"]: r for r in runs if r["workers"] == workers}
            base = same[sizes[0]]
            for size in sizes[1:]:
                if size not in same:
                    continue
                big = same[size]["steps"]
                ratios = {s: big[s] / base["steps"][s] for s in base["steps"] if s in big and base["steps"][s] > 0.5}
                worst = max(ratios, key=ratios.get) if ratios else None
                print(
                    f"  {workers} w, {size:,} vs {sizes[0]:,} SKUs ({size / sizes[0]:.0f}x): whole cycle "
                    f"{same[size]['wall_seconds'] / base['wall_seconds']:.2f}x"
                    + (f", fastest-growing step {worst} {ratios[worst]:.2f}x" if worst else "")
                )
    counts = sorted({r["workers"] for r in runs})
    if len(counts) > 1:
        print(f"\nspeed-up of {counts[-1]} workers over {counts[0]} (whole cycle and the steps that use workers)")
        for size in sizes:
            pair = {r["workers"]: r for r in runs if r["skus"] == size}
            if counts[0] in pair and counts[-1] in pair:
                one, many = pair[counts[0]], pair[counts[-1]]
                parts = [f"whole cycle {one['wall_seconds'] / many['wall_seconds']:.2f}x"]
                for step in ("statistical_forecast", "supply_plan"):
                    if step in one["steps"] and step in many["steps"]:
                        parts.append(f"{step} {one['steps'][step] / many['steps'][step]:.2f}x")
                print(f"  {size:,} SKUs: " + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("skus", nargs="*", type=int, default=[1000, 5000, 20000])
    parser.add_argument("--workers", default="2", help="comma-separated worker counts, e.g. 1,2")
    parser.add_argument("--cycle", default="2026-11")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one size in this process
    args = parser.parse_args()
    if args.one:
        skus, workers = (int(x) for x in args.one.split(","))
        print("RESULT " + json.dumps(one_run(skus, workers, args.cycle, args.seed)), flush=True)
        return
    runs = []
    for skus in args.skus:
        for workers in (int(w) for w in args.workers.split(",")):
            print(f"running {skus:,} SKUs with {workers} worker(s) ...", flush=True)
            done = subprocess.run(
                [sys.executable, __file__, "--one", f"{skus},{workers}", "--cycle", args.cycle, "--seed", str(args.seed)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if not lines:
                print(done.stdout[-2000:], done.stderr[-4000:])
                raise SystemExit(f"the run of {skus} SKUs with {workers} worker(s) failed")
            run = json.loads(lines[-1].removeprefix("RESULT "))
            if not run["success"]:
                raise SystemExit(f"the cycle failed at {skus} SKUs: {run['explanation']}")
            print(f"  {run['wall_seconds']:.1f} s, peak {_gib(run['overall_peak_rss'])} GiB, load {run['load'][0]:.1f}", flush=True)
            runs.append(run)
    report(runs)


if __name__ == "__main__":
    main()
