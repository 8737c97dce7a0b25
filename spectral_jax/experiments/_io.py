"""JSON, text and figure outputs of the experiments, all written atomically.

Every write goes to a temporary file in the target's own directory, is flushed and fsynced,
and is renamed over the target with `os.replace` (atomic on POSIX and Windows within one file
system). A crash or a full disk therefore leaves either the old file or the new one, never a
torn one, and at worst a stray `.<name>.*.tmp` file that the next write ignores.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import pathlib
from typing import Any

import numpy as np

from ..sweep.atomic import atomic_open

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
