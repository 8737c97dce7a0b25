"""Shared plumbing for experiment modules: presets, result files, float64 switch."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import numpy as np


def enable_float64() -> None:
    """Experiments analyse in float64 (docs/theory.md §5); the library itself never flips this."""
    import jax

    jax.config.update("jax_enable_x64", True)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return np.asarray(value).tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def write_result(out_dir: pathlib.Path, name: str, result: dict) -> pathlib.Path:
    """Write `out_dir/name.json` atomically (a crash never leaves a half-written file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_jsonable(result), indent=2, sort_keys=True))
    tmp.replace(path)
    return path
