"""What the two-node tests need beside the cluster (components/platform/local_cluster.py):
the raylet of a node, to kill it as a lost machine would vanish."""

from __future__ import annotations

import subprocess
from pathlib import Path


def raylet_pid(node: subprocess.Popen) -> int:
    """The raylet among a `ray start` process's descendants (read from /proc)."""
    parents, names = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        pid, rest = text.split(" (", 1)
        name, fields = rest.rsplit(") ", 1)
        parents[int(pid)], names[int(pid)] = int(fields.split()[1]), name

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == node.pid:
                return True
        return False

    (raylet,) = [pid for pid, name in names.items() if name == "raylet" and descends(pid)]
    return raylet
