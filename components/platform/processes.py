"""Is the process that wrote a lock or started an MLflow run still running?

A pid alone does not name a process: once the writer dies its pid can be reused by an
unrelated process, which would then hold a lock (or keep a run RUNNING) forever. So the
writer also records its kernel start time, and a live pid with another start time is dead.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot, from /proc), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22 (starttime), after "(comm)"


def process_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether ``pid`` runs and, when ``start_ticks`` was recorded, is the same process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return start_ticks is None or process_start_ticks(pid) in (None, int(start_ticks))
