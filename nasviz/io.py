"""Files in and out: atomic writes, and JSON reads whose every failure names the file.

Writes go to a temporary file in the same directory, are fsynced, then renamed over the target:
a process killed during a write leaves the previous file intact (the rename is atomic on POSIX
and Windows), so checkpoints, histories and architecture files are never half written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; give the usual mode instead
            os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _file_mode(path: Path) -> int:
    """The replaced file's permission bits, or what a plain open() would create (0666 & ~umask)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(
    path: str | Path, what: str = "JSON file", *, max_bytes: int | None = None, max_depth: int = 64
) -> Any:
    """Parse a JSON file; every way it can be unreadable is a ValueError naming ``path``.

    A missing file is a FileNotFoundError. ``what`` names the file in messages ("genotype file").
    ``max_bytes`` bounds the size read, ``max_depth`` the nesting of arrays and objects.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise ValueError(f"{what} {path} is not a regular file")
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            size = path.stat().st_size
            raise ValueError(f"{what} {path} is {size:,} bytes; at most {max_bytes:,} are read")
        raw = path.read_bytes()
    except OSError as exc:  # permission denied, a FIFO, an I/O error ...
        raise ValueError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from exc
    except RecursionError:  # the C parser gives up near the interpreter's recursion limit
        data = _TOO_DEEP
    if data is _TOO_DEEP or json_depth(data) > max_depth:
        raise ValueError(f"{what} {path} nests arrays/objects deeper than {max_depth} levels")
    return data


_TOO_DEEP = object()


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (0 for a scalar), computed without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            depth = max(depth, level)
            stack.extend((child, level + 1) for child in item)
    return depth
