"""Temporary files that are renamed into place, and the leftovers of interrupted writers.

The BI copy and the review pack are written to a temporary file next to their target and
renamed over it, so a reader never sees half a file. A writer killed before the rename leaves
its temporary file behind (a BI copy's can be as large as the warehouse, with a `.wal` next to
it); the next writer of the same target removes every leftover whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from sop_pipeline.runlock import pid_alive


def temp_path(target: Path) -> Path:
    """A temporary file for `target` in its folder (same file system: the rename is atomic),
    named after this process so another writer can tell a leftover from a live write."""
    return target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"


def remove_leftovers(target: Path) -> list[Path]:
    """Delete the temporary files (and their `.wal`) of writers of `target` that no longer run."""
    removed = []
    prefix = f".{target.name}."
    for path in target.parent.glob(f"{prefix}*.tmp*"):
        pid_text = path.name[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed
