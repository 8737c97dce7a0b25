"""Atomic file writes for experiment outputs: results, summaries and figures.

Every write goes to a temporary file in the target's own directory, is flushed and fsynced,
and is renamed over the target with `os.replace` (atomic on POSIX and Windows within one file
system). A crash or a full disk therefore leaves either the old file or the new one, never a
torn one, and at worst a stray `.<name>.*.tmp` file that the next write ignores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_open",
    "atomic_write_text",
    "save_figure",
    "to_jsonable",
    "write_json",
    "write_result",
]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, arrays and numpy scalars as plain JSON values (non-finite floats as text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(value).tolist()  # NaN inside arrays stays a JSON NaN token
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


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


def atomic_write_text(path: str | os.PathLike, text: str) -> pathlib.Path:
    """Write `text` to `path` atomically; returns the path."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return pathlib.Path(path)


def write_json(path: str | os.PathLike, value: Any) -> pathlib.Path:
    """Write `value` (made JSON-safe by `to_jsonable`) to `path` atomically, keys sorted."""
    return atomic_write_text(path, json.dumps(to_jsonable(value), indent=2, sort_keys=True))


def write_result(out_dir: pathlib.Path, name: str, result: dict) -> pathlib.Path:
    """Write `out_dir/<name>.json` atomically; returns its path."""
    return write_json(pathlib.Path(out_dir) / f"{name}.json", result)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 120, close: bool = True):
    """Save a matplotlib figure atomically (format from the suffix) and close it.

    **Arguments:** `fig`: the `Figure`; `path`: e.g. `out/x.png` or `out/x.pdf`; `dpi`;
    `close`: release the figure afterwards (the default: experiments make many figures).
    **Returns:** the path. **Raises:** `ValueError` when the suffix is not a format
    matplotlib can write.
    """
    path = pathlib.Path(path)
    fmt = path.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"save_figure: path {str(path)!r} has suffix {path.suffix!r}; "
            f"expected one of {sorted(supported)}"
        )
    try:
        with atomic_open(path, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=dpi)
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path
