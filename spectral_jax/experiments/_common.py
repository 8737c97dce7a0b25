"""Shared plumbing for experiment modules: presets, the float64 switch, publishing outputs.

An experiment module defines `NAME`, a `Config` (a frozen dataclass subclassing
`ExperimentConfig`, with `quick()` and `full()` presets) and `run(config, out_dir) -> dict`.
It computes its result, draws its figure in memory, and ends with
`return publish(out_dir, NAME, result, figure)`: the figure is written first and the result
JSON last, both atomically, so a result file on disk always comes with its figure, and an
experiment that raises before `publish` leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib

from ._io import save_figure, to_jsonable, write_json, write_result

__all__ = [
    "ExperimentConfig",
    "Preset",
    "enable_float64",
    "publish",
    "save_figure",
    "to_jsonable",
    "write_json",
    "write_result",
]


class Preset(enum.StrEnum):
    """Size of a run: `QUICK` (minutes on a laptop CPU) or `FULL` (the README's numbers)."""

    QUICK = "quick"
    FULL = "full"


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Base of every experiment's configuration (subclass it as a frozen dataclass).

    `quick()` is the default configuration; subclasses override `full()` with the large one.
    (The classmethods return the subclass; annotated with the base class, as the run-time
    type checks of the test suite do not resolve `Self` on a classmethod.)
    """

    @classmethod
    def quick(cls) -> ExperimentConfig:
        return cls()

    @classmethod
    def full(cls) -> ExperimentConfig:
        raise NotImplementedError(f"{cls.__qualname__} defines no `full` preset")

    @classmethod
    def from_preset(cls, preset: Preset | str) -> ExperimentConfig:
        """The configuration of `preset` (a `Preset` or its name)."""
        try:
            preset = Preset(preset)
        except ValueError:
            raise ValueError(
                f"preset must be one of {[p.value for p in Preset]}, got {preset!r}"
            ) from None
        return cls.quick() if preset is Preset.QUICK else cls.full()


def enable_float64() -> None:
    """Experiments analyse in float64 (docs/theory.md §5); the library itself never flips this."""
    import jax

    jax.config.update("jax_enable_x64", True)


def publish(out_dir: pathlib.Path, name: str, result: dict, figure=None) -> dict:
    """Write `<name>.png` (if `figure` is given) then `<name>.json`, atomically; return `result`.

    The result file is written last: its presence marks a finished experiment.
    """
    out_dir = pathlib.Path(out_dir)
    if figure is not None:
        save_figure(figure, out_dir / f"{name}.png")
    write_result(out_dir, name, result)
    return result
