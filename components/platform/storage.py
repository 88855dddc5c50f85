"""Paths and URIs on any pyarrow filesystem: local folders, ``s3://``, ``gs://``, ``hdfs://``.

Every ``data=``, ``out=``, ``storage_path`` and source path goes through here, so one rule
holds everywhere: a URI stays a URI (``Path("s3://b/x").resolve()`` would turn it into
``./s3:/b/x``), and a local path is made absolute without following symlinks.

Shard lists may be written the way img2dataset and WebDataset users write them:
``s3://bucket/cc12m/{00000..01243}.tar`` (numeric ranges keep their zero padding),
``{train,val}/*.parquet`` (comma alternatives) and glob patterns (``*``, ``?``, ``[...]``,
``**`` for any depth), or a folder, which means every file under it.

An S3-compatible server other than AWS (MinIO, moto, Ceph) is reached through the standard
``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) environment variable, which boto3, s3fs
and this module all honour; credentials come from the usual AWS variables.

Code that needs real files (safetensors, matplotlib, MLflow's ``log_artifact``) reads a URI
through ``local_copy`` (a temporary download) and writes one through ``staged_dir`` (a
temporary folder uploaded when the block succeeds); both hand a local path through as is.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import queue
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_BRACE = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")
_GLOB_CHARS = ("*", "?", "[")
MAX_BRACE_PATHS = 1_000_000  # a million shard names is far past any real dataset


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` (including ``file://``), False for plain local paths."""
    return bool(_SCHEME.match(str(path)))


def local_path(path: str) -> str | None:
    """The local filesystem path of ``path`` (a plain path or ``file://``), else None."""
    path = str(path)
    if path.startswith("file://"):
        return urlparse(path).path
    return None if is_uri(path) else os.path.abspath(os.path.expanduser(path))


def _s3_filesystem() -> pafs.S3FileSystem:
    """S3 as this process's environment describes it.

    Keys given in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` are passed explicitly:
    pyarrow then pickles them with the filesystem, so a Ray task or Train worker that gets
    this object signs its requests even on a node whose processes lack those variables
    (the endpoint travels the same way). Without them the SDK's default chain (instance
    or pod roles) is used wherever the filesystem is unpickled.
    """
    keys = {}
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        keys = {
            "access_key": os.environ["AWS_ACCESS_KEY_ID"],
            "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            "session_token": os.environ.get("AWS_SESSION_TOKEN"),
        }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return pafs.S3FileSystem(**keys)
    parsed = urlparse(endpoint)
    return pafs.S3FileSystem(
        endpoint_override=parsed.netloc or parsed.path,
        scheme=parsed.scheme or "https",
        region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        **keys,
    )


def filesystem_and_path(path: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) for a local path or a URI."""
    local = local_path(path)
    if local is not None:
        return pafs.LocalFileSystem(), local
    path = str(path)
    if path.startswith(("s3://", "s3a://")):
        return _s3_filesystem(), path.split("://", 1)[1].rstrip("/")
    return pafs.FileSystem.from_uri(path)


def join(base: str, *parts: str) -> str:
    """``base`` / parts, keeping a URI a URI (never ``Path``-normalised)."""
    base = str(base)
    if is_uri(base):
        return posixpath.join(base.rstrip("/"), *[p.strip("/") for p in parts])
    return os.path.join(base, *parts)


def _to_uri(original: str, fs_path: str) -> str:
    """The user-facing form of a path found inside the filesystem ``original`` names."""
    if not is_uri(original):
        return fs_path
    scheme = original.split("://", 1)[0]
    if scheme == "file":
        return "file://" + fs_path
    return f"{scheme}://{fs_path}"


def brace_count(pattern: str) -> int:
    """How many paths ``expand_braces(pattern)`` gives, counted without building them."""
    match = _BRACE.search(pattern)
    if match is None:
        return 1
    body, head, tail = match.group(1), pattern[: match.start()], pattern[match.end() :]
    numeric = _RANGE.match(body)
    if numeric:
        first, last = (int(n) for n in numeric.groups())
        return (abs(last - first) + 1) * brace_count(head + tail)
    if "," in body:
        return sum(brace_count(head + option + tail) for option in body.split(","))
    return brace_count(tail)


def expand_braces(pattern: str) -> list[str]:
    """``a{00..02}b`` -> a00b, a01b, a02b; ``{x,y}`` -> x, y; nested and repeated braces.

    Refuses (ValueError) a pattern of more than MAX_BRACE_PATHS paths before building any:
    ``{00000..99999999}`` would otherwise take ~17 GB to list."""
    count = brace_count(pattern)
    if count > MAX_BRACE_PATHS:
        raise ValueError(
            f"{pattern}: expands to {count} paths, more than {MAX_BRACE_PATHS}; "
            "give a folder or a glob instead of a brace range"
        )
    return _expand_braces(pattern)


def _expand_braces(pattern: str) -> list[str]:
    match = _BRACE.search(pattern)
    if match is None:
        return [pattern]
    body, head, tail = match.group(1), pattern[: match.start()], pattern[match.end() :]
    numeric = _RANGE.match(body)
    if numeric:
        first, last = numeric.groups()
        width = len(first) if first.lstrip("-").startswith("0") else 0
        step = 1 if int(last) >= int(first) else -1
        options = [f"{n:0{width}d}" for n in range(int(first), int(last) + step, step)]
    elif "," in body:
        options = body.split(",")
    else:
        options = ["{" + body + "}"]  # not an expansion: keep the literal braces
        return [head + options[0] + t for t in _expand_braces(tail)]
    return [e for option in options for e in _expand_braces(head + option + tail)]


def _part_regex(part: str) -> str:
    """One path component of a glob as a regex: ``*``/``?`` stay inside it, ``**`` spans any."""
    if part == "**":
        return ".*"
    out, i = "", 0
    while i < len(part):
        char = part[i]
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[" and "]" in part[i + 1 :]:
            end = part.index("]", i + 1)
            out += "[" + part[i + 1 : end].replace("!", "^", 1) + "]"
            i = end
        else:
            out += re.escape(char)
        i += 1
    return out


def _glob(fs: pafs.FileSystem, pattern: str) -> list[str]:
    parts = pattern.split("/")
    fixed = next(i for i, part in enumerate(parts) if any(c in part for c in _GLOB_CHARS))
    base = "/".join(parts[:fixed]) or "/"
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    regex = re.compile("^" + "/".join(_part_regex(part) for part in parts) + "$")
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and regex.match(i.path))


def expand_paths(spec: str | Iterable[str], suffixes: tuple[str, ...] = ()) -> list[str]:
    """Every file a path spec names, sorted within each entry and in the user's order.

    ``spec`` is one path/URI/pattern, a comma-free list of them, or a folder (all files
    under it, optionally only those ending in ``suffixes``). Raises FileNotFoundError
    naming the entry that matches nothing, since an empty shard list is always a mistake.
    """
    entries = [spec] if isinstance(spec, str) else list(spec)
    found: list[str] = []
    for entry in entries:
        for pattern in expand_braces(str(entry)):
            fs, path = filesystem_and_path(pattern)
            if any(c in path for c in _GLOB_CHARS):
                files = _glob(fs, path)
            else:
                info = fs.get_file_info(path)
                if info.type == pafs.FileType.File:
                    files = [path]
                elif info.type == pafs.FileType.Directory:
                    selector = pafs.FileSelector(path, recursive=True)
                    files = sorted(
                        i.path
                        for i in fs.get_file_info(selector)
                        if i.type == pafs.FileType.File
                        and not i.base_name.startswith((".", "_"))
                        and (not suffixes or i.path.lower().endswith(suffixes))
                    )
                else:
                    files = []
            if not files:
                raise FileNotFoundError(f"{pattern}: no such file, folder or matching files")
            found += [_to_uri(pattern, f) for f in files]
    return found


def exists(path: str) -> bool:
    fs, inner = filesystem_and_path(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def probe_exists(path: str, timeout_s: float | None = None) -> bool:
    """``exists`` with a deadline, for checks before a run starts.

    A cloud filesystem retries an unreachable or credential-less endpoint for minutes
    (gs:// without credentials never answered in 300 s), so a config check would hang
    instead of saying what is wrong. Raises TimeoutError naming the path after
    ``timeout_s`` (default BINDKIT_STORAGE_TIMEOUT_S, 20 s); the probe thread is abandoned.
    """
    timeout_s = (
        float(os.environ.get("BINDKIT_STORAGE_TIMEOUT_S", 20)) if timeout_s is None else timeout_s
    )
    answer: queue.Queue[tuple[bool, BaseException | None]] = queue.Queue(maxsize=1)

    def probe() -> None:
        try:
            answer.put((exists(path), None))
        except BaseException as err:  # handed to the caller's thread, raised there
            answer.put((False, err))

    threading.Thread(target=probe, daemon=True, name=f"probe {path}").start()
    try:
        found, error = answer.get(timeout=timeout_s)
    except queue.Empty:
        raise TimeoutError(f"{path}: storage did not answer within {timeout_s:g} s") from None
    if error is not None:
        raise error
    return found


def is_dir(path: str) -> bool:
    """True for a local folder or an object-store prefix that holds objects."""
    fs, inner = filesystem_and_path(path)
    return fs.get_file_info(inner).type == pafs.FileType.Directory


def is_file(path: str) -> bool:
    """True for a local file or an object."""
    fs, inner = filesystem_and_path(path)
    return fs.get_file_info(inner).type == pafs.FileType.File


def child(base: str | Path, *parts: str) -> str | Path:
    """``base`` / parts as the caller holds it: a local Path stays a Path, a URI a string."""
    return join(str(base), *parts) if is_uri(str(base)) else Path(base, *parts)


def basename(path: str | Path) -> str:
    """The last component of a local path or URI (``s3://b/data/test`` -> ``test``)."""
    return posixpath.basename(str(path).rstrip("/"))


def copy_tree(source: str | Path, destination: str | Path) -> None:
    """Copy a file or a folder tree between any two filesystems (local <-> s3:// ...);
    folders are created as needed and files of the same name are replaced."""
    source_fs, source_path = filesystem_and_path(str(source))
    target_fs, target_path = filesystem_and_path(str(destination))
    is_folder = source_fs.get_file_info(source_path).type == pafs.FileType.Directory
    # pyarrow creates the folders below the destination, not the destination's own
    target_fs.create_dir(target_path if is_folder else posixpath.dirname(target_path))
    pafs.copy_files(
        source_path,
        target_path,
        source_filesystem=source_fs,
        destination_filesystem=target_fs,
    )


@contextlib.contextmanager
def local_copy(path: str | Path) -> Iterator[Path]:
    """A local folder with what ``path`` holds: ``path`` itself when local, else a temporary
    download of it (removed on exit), for readers that need real files (safetensors)."""
    if not is_uri(str(path)):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="bindkit-download-") as tmp:
        copy_tree(path, tmp)
        yield Path(tmp)


_STAGED: dict[str, Path] = {}  # URI -> the local folder of the outermost open staged_dir


@contextlib.contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """A local folder to write ``path``'s files into: ``path`` itself when local; for a URI
    a temporary folder uploaded to ``path`` when the block ends without an error.

    Writers that need real files (checkpoints, plots, MLflow's ``log_artifact``) work
    unchanged, and an object store only ever sees a finished block's files. A nested block
    for the same URI (a pipeline's ``write_outputs`` inside the pipeline's own block) gets
    the same folder, and the outermost block uploads, so report.html still finds every
    plot the pipeline wrote.
    """
    if not is_uri(str(path)):
        yield Path(path)
        return
    uri = str(path).rstrip("/")
    if uri in _STAGED:
        yield _STAGED[uri]
        return
    with tempfile.TemporaryDirectory(prefix="bindkit-stage-") as tmp:
        _STAGED[uri] = Path(tmp)
        try:
            yield Path(tmp)
        finally:
            del _STAGED[uri]
        if any(Path(tmp).iterdir()):
            copy_tree(tmp, uri)


def ray_paths(paths: Iterable[str]) -> tuple[list[str], pafs.FileSystem | None]:
    """``paths`` and ``filesystem`` arguments for a ``ray.data.read_*`` call.

    URIs become paths inside one filesystem object, which Ray pickles into its read tasks
    (endpoint and keys included, see ``_s3_filesystem``); local paths stay as they are,
    with None (Ray's own default).
    """
    paths = [str(p) for p in paths]
    if not paths or not is_uri(paths[0]):
        return paths, None
    filesystem, _ = filesystem_and_path(paths[0])
    return [filesystem_and_path(p)[1] for p in paths], filesystem


def read_bytes(path: str) -> bytes:
    fs, inner = filesystem_and_path(path)
    with fs.open_input_stream(inner) as stream:
        return stream.read()


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` whole: via a temporary name and a rename on a local disk, and as one
    object PUT on object stores (which never show a half-written object)."""
    fs, inner = filesystem_and_path(path)
    fs.create_dir(posixpath.dirname(inner), recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{inner}.tmp-{os.getpid()}"
        with fs.open_output_stream(tmp) as stream:
            stream.write(data)
        os.replace(tmp, inner)
        return
    with fs.open_output_stream(inner) as stream:
        stream.write(data)


def under_root(root: str, relative: str) -> str:
    """``root``/``relative``, refusing a path that would leave ``root``.

    Image paths in a caption file, a Parquet column or a benchmark's annotations are data,
    not configuration: an absolute path (``/etc/passwd``), a URI, ``../`` or a symlink
    inside ``root`` that points outside it must not reach outside the folder the user
    named. On a local disk both are resolved (symlinks included) before they are compared;
    object stores have no links. Returns the joined path (not the resolved one), or raises
    ValueError naming the path.
    """
    relative = str(relative)
    if is_uri(relative) or relative.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", relative):
        raise ValueError(
            f"absolute path {relative!r} is not allowed (paths are relative to {root})"
        )
    inner = posixpath.normpath(relative.replace("\\", "/"))
    if inner == ".." or inner.startswith("../"):
        raise ValueError(f"path {relative!r} leaves the image root {root}")
    path = join(root, inner)
    local_root = local_path(root)
    if local_root is not None:
        real_root, real = os.path.realpath(local_root), os.path.realpath(local_path(path))
        if os.path.commonpath([real_root, real]) != real_root:
            raise ValueError(
                f"path {relative!r} resolves to {real} (through a symlink), outside the "
                f"image root {root}"
            )
    return path


def parent(path: str) -> str:
    """The folder holding ``path`` (URI or local)."""
    path = str(path).rstrip("/")
    return path.rsplit("/", 1)[0] if is_uri(path) else os.path.dirname(os.path.abspath(path))
