"""Atomic file writes: a temporary file in the target's directory, fsynced, then `os.replace`.

A crash or a full disk leaves either the old file or the new one, never a torn one, and at
worst a stray `.<name>.*.tmp` file that readers ignore. The result store (`store.py`) and the
experiment outputs (`spectral_jax.experiments`) both write through `atomic_open`.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["atomic_open"]


def _default_mode() -> int:
    # mkstemp creates files readable by their owner only; results are ordinary files.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: pathlib.Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
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


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to `path`; on a clean exit it replaces `path` atomically.

    **Arguments:** `path`: the final file; `mode`: `"wb"` or `"w"` (text, UTF-8).
    **Raises:** `ValueError` for any other mode. If the body raises, the temporary file is
    removed and `path` is left as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = pathlib.Path(tmp_name)
    try:
        os.chmod(tmp, _default_mode())
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
