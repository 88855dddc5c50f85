"""Output folders that know what made them, and that one run at a time may write.

Two guards every pipeline and sweep puts around its ``out=`` before any work starts:

- ``check_manifest``: ``out/manifest.json`` records the options that decide what the
  folder holds (spec, seed, grid, source fingerprint...). A rerun with the same manifest
  resumes; a rerun with another one refuses with one line naming the differing keys,
  because skipping "existing" shards by file name would otherwise pass old data off under
  a new card. ``overwrite=True`` empties the folder for a fresh build instead.
- ``run_lock``: ``out/.bindkit.lock`` holds the pid, host and start time of the run
  writing there; a second run refuses with them, and a lock whose process is dead
  (kill -9) is taken over, so a crash never needs manual clean-up.

Both work on local paths and on filesystem URIs (``s3://bucket/run``) through pyarrow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

from pyarrow import fs as pafs

from components.platform.config import ConfigError, flatten
from components.platform.processes import process_alive, process_start_ticks

MANIFEST = "manifest.json"
LOCK = ".bindkit.lock"
# Keys that say how or where a run goes, not what it computes: they may change on a resume.
RUN_ONLY_KEYS = (
    "out",
    "overwrite",
    "resume",
    "experiment",
    "cpus_per_trial",
    "gpus_per_trial",
    "max_concurrent_trials",
)


class OutputMismatchError(ConfigError):
    """``out=`` holds outputs made with other settings than this run's."""


class OutputLockedError(ConfigError):
    """Another live run holds ``out=``."""


def _filesystem_and_path(out: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """pyarrow filesystem + path for a local folder or a URI (shared helper when present)."""
    try:
        from components.platform.storage import filesystem_and_path
    except ImportError:
        filesystem_and_path = None
    if filesystem_and_path is not None:
        return filesystem_and_path(str(out))
    text = str(out)
    if "://" in text:
        return pafs.FileSystem.from_uri(text)
    return pafs.LocalFileSystem(), os.path.abspath(text)


def _is_local(filesystem: pafs.FileSystem) -> bool:
    return isinstance(filesystem, pafs.LocalFileSystem)


def _ensure_folder(filesystem: pafs.FileSystem, path: str, out: str) -> None:
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.File:
        raise ConfigError(f"out={out} is a file; out= must be a folder (new or empty)")
    filesystem.create_dir(path, recursive=True)


def _read_json(filesystem: pafs.FileSystem, path: str) -> dict[str, Any] | None:
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return json.loads(stream.read().decode())


def _read_lock(filesystem: pafs.FileSystem, path: str) -> dict[str, Any]:
    """The holder record; a half-written one is re-read once before counting as empty."""
    for _attempt in range(2):
        try:
            return _read_json(filesystem, path) or {}
        except ValueError:
            time.sleep(0.2)
    return {}


def _write_json(filesystem: pafs.FileSystem, path: str, payload: dict[str, Any]) -> None:
    with filesystem.open_output_stream(path) as stream:
        stream.write(json.dumps(payload, indent=2, sort_keys=True).encode())


def _normalise(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the manifest reads back as from JSON (tuples -> lists, paths -> str)."""
    return json.loads(json.dumps(manifest, sort_keys=True, default=str))


def manifest_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ (or exist on one side only), sorted."""
    old_flat, new_flat = flatten(_normalise(old)), flatten(_normalise(new))
    return sorted(
        k for k in old_flat.keys() | new_flat.keys() if old_flat.get(k, ...) != new_flat.get(k, ...)
    )


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _clear(filesystem: pafs.FileSystem, path: str) -> None:
    """Delete everything in ``path`` except the lock this run holds."""
    for info in filesystem.get_file_info(pafs.FileSelector(path)):
        if info.base_name == LOCK:
            continue
        if info.type == pafs.FileType.Directory:
            filesystem.delete_dir(info.path)
        else:
            filesystem.delete_file(info.path)


def check_manifest(
    out: str | os.PathLike, manifest: dict[str, Any], overwrite: bool = False
) -> bool:
    """Claim ``out`` for outputs described by ``manifest``; True when resuming a match.

    Call before the first shard/trial is written. Raises OutputMismatchError (one line,
    naming the differing keys) when ``out`` holds other outputs, unless ``overwrite``,
    which empties the folder first. A non-empty folder without a manifest is refused too:
    nothing says what made its files.
    """
    filesystem, path = _filesystem_and_path(out)
    _ensure_folder(filesystem, path, str(out))
    manifest_path = f"{path.rstrip('/')}/{MANIFEST}"
    if overwrite:
        _clear(filesystem, path)
        _write_json(filesystem, manifest_path, _normalise(manifest))
        return False
    existing = _read_json(filesystem, manifest_path)
    if existing is None:
        leftovers = [
            info.base_name
            for info in filesystem.get_file_info(pafs.FileSelector(path))
            if info.base_name != LOCK
        ]
        if leftovers:
            raise OutputMismatchError(
                f"out={out} already holds {len(leftovers)} entries ({', '.join(sorted(leftovers)[:3])}"
                f"{', ...' if len(leftovers) > 3 else ''}) but no {MANIFEST}: choose a new out= "
                "or pass overwrite=true to rebuild it"
            )
        _write_json(filesystem, manifest_path, _normalise(manifest))
        return False
    differing = manifest_diff(existing, manifest)
    if differing:
        old, new = flatten(existing), flatten(_normalise(manifest))
        shown = "; ".join(
            f"{k}: {_short(old.get(k))} -> {_short(new.get(k))}" for k in differing[:6]
        )
        more = f" (+{len(differing) - 6} more)" if len(differing) > 6 else ""
        raise OutputMismatchError(
            f"out={out} was made with other settings ({shown}{more}): choose a new out= "
            "or pass overwrite=true to rebuild it"
        )
    return True


def config_manifest(config: Any, ignore: tuple[str, ...] = RUN_ONLY_KEYS) -> dict[str, Any]:
    """A config dataclass as a manifest: every top-level key except ``ignore``."""
    values = dataclasses.asdict(config)
    return {key: value for key, value in values.items() if key not in ignore}


def _holder_alive(holder: dict[str, Any]) -> bool:
    """Whether the process that wrote ``holder`` (a same-host lock record) still runs."""
    return process_alive(int(holder.get("pid", -1)), holder.get("pid_start"))


# Locks this process holds: path -> depth, so a pipeline called from a sweep in the same
# process (or main() called twice in a test) re-enters instead of refusing itself.
_HELD: dict[str, int] = {}


def _holder_line(out: str, holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("started", 0)))
    return (
        f"out={out} is in use by pid {holder.get('pid')} on {holder.get('host')} "
        f"(started {started}); wait for it to finish or choose another out="
    )


def _try_create(filesystem: pafs.FileSystem, path: str, payload: dict[str, Any]) -> bool:
    """Create the lock file only if absent (atomic O_EXCL locally; best effort on URIs)."""
    if _is_local(filesystem):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        return True
    if filesystem.get_file_info(path).type == pafs.FileType.File:
        return False
    _write_json(filesystem, path, payload)
    return _read_json(filesystem, path) == payload


def _take_over_stale(filesystem: pafs.FileSystem, path: str) -> None:
    """Move a dead holder's lock aside under a unique name, then drop it."""
    if _is_local(filesystem):
        aside = f"{path}.stale-{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, aside)
            os.unlink(aside)
    else:
        with contextlib.suppress(FileNotFoundError, OSError):
            filesystem.delete_file(path)


@contextlib.contextmanager
def run_lock(out: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Hold ``out/.bindkit.lock`` for the duration of a run; yields the lock record.

    A live holder (same host, pid alive; or another host) makes this raise
    OutputLockedError naming its pid and start time; a dead holder's lock is taken over.
    """
    filesystem, path = _filesystem_and_path(out)
    _ensure_folder(filesystem, path, str(out))
    lock_path = f"{path.rstrip('/')}/{LOCK}"
    if lock_path in _HELD:
        _HELD[lock_path] += 1
        try:
            yield _read_lock(filesystem, lock_path)
        finally:
            _HELD[lock_path] -= 1
        return
    record = {
        "pid": os.getpid(),
        "pid_start": process_start_ticks(os.getpid()),
        "host": socket.gethostname(),
        "started": time.time(),
        "token": uuid.uuid4().hex,
    }
    for _attempt in range(3):
        if _try_create(filesystem, lock_path, record):
            break
        holder = _read_lock(filesystem, lock_path)
        same_host = holder.get("host") == record["host"]
        if holder and not (same_host and not _holder_alive(holder)):
            raise OutputLockedError(_holder_line(str(out), holder))
        _take_over_stale(filesystem, lock_path)
    else:
        raise OutputLockedError(_holder_line(str(out), _read_lock(filesystem, lock_path)))
    _HELD[lock_path] = 1
    try:
        yield record
    finally:
        del _HELD[lock_path]
        current = _read_lock(filesystem, lock_path)
        if current.get("token") == record["token"]:
            filesystem.delete_file(lock_path)
