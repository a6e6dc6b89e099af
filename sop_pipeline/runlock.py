"""One writer per warehouse, said plainly.

DuckDB lets one process write a file at a time, and a cycle is a unit: a second run that
rebuilt the marts in the middle of the first would leave both with a plan nobody can trust.
So the run that writes a warehouse owns it, in a small lock file next to it (never in the
warehouse itself: a run that fails at ingestion leaves the warehouse byte-for-byte as it was).
Every step of the owning run may write; a step of another run waits while the owner is alive,
then takes over or gives up with who holds it and since when. The owner is alive while its
process lives (`sop run`) or while Dagster says its run is in progress (runs from the UI, whose
steps may each run in their own process).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Holder:
    run_id: str
    cycle: str
    origin: str  # "sop" (the command line) or "dagster" (the UI, a schedule, a sensor)
    pid: int
    host: str
    since: str  # UTC, ISO

    def describe(self) -> str:
        who = "`sop`" if self.origin == "sop" else "a Dagster run"
        return f"cycle {self.cycle} is being run by {who} (run {self.run_id[:8]}, process {self.pid} on {self.host}) since {self.since} UTC"


class WarehouseBusy(RuntimeError):
    """Another live run owns the warehouse."""


def lock_path(warehouse_path: str | Path) -> Path:
    path = Path(warehouse_path)
    return path.with_name(f".{path.name}.run")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_alive(holder: Holder) -> bool:
    """A holder on this host is alive while its process is (and it is not this process: the
    runs of one process follow each other); on another host, assume it is."""
    if holder.host != socket.gethostname():
        return True
    return holder.pid != os.getpid() and pid_alive(holder.pid)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[object]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(handle) -> Holder | None:
    handle.seek(0)
    text = handle.read().strip()
    if not text:
        return None
    try:
        return Holder(**json.loads(text))
    except (ValueError, TypeError):
        return None


def _write(handle, holder: Holder | None) -> None:
    handle.seek(0)
    handle.truncate()
    if holder is not None:
        handle.write(json.dumps(asdict(holder)))
    handle.flush()


def current(warehouse_path: str | Path, alive: Callable[[Holder], bool] = process_alive) -> Holder | None:
    """The live run that owns the warehouse, or None."""
    path = lock_path(warehouse_path)
    if not path.exists():
        return None
    with _locked(path) as handle:
        holder = _read(handle)
    return holder if holder is not None and alive(holder) else None


def claim(
    warehouse_path: str | Path,
    run_id: str,
    cycle: str,
    origin: str,
    wait_seconds: float = 0.0,
    alive: Callable[[Holder], bool] = process_alive,
    say: Callable[[str], None] | None = None,
    pid: int | None = None,
) -> Holder:
    """Own the warehouse for `run_id` (again, if it already does). While another live run owns
    it, wait up to `wait_seconds` (saying so once), then raise `WarehouseBusy`."""
    path = lock_path(warehouse_path)
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        with _locked(path) as handle:
            holder = _read(handle)
            if holder is None or holder.run_id == run_id or not alive(holder):
                mine = Holder(
                    run_id, cycle, origin, pid or os.getpid(), socket.gethostname(), dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                )
                if holder is None or holder.run_id != run_id:
                    _write(handle, mine)
                    return mine
                return holder
        if time.monotonic() >= deadline:
            raise WarehouseBusy(
                f"{holder.describe()}: wait for it to finish (or stop it) and run again"
                + (f" (waited {wait_seconds:.0f} s)" if wait_seconds else "")
            )
        if say is not None and not told:
            say(f"waiting: {holder.describe()}")
            told = True
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def release(warehouse_path: str | Path, run_id: str) -> None:
    """Give the warehouse up, if `run_id` owns it."""
    path = lock_path(warehouse_path)
    if not path.exists():
        return
    with _locked(path) as handle:
        holder = _read(handle)
        if holder is not None and holder.run_id == run_id:
            _write(handle, None)
