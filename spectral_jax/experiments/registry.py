"""Which experiments exist, what kind each is, and where its presets live."""

from __future__ import annotations

import importlib
import pathlib
from importlib import resources
from types import ModuleType

from ._common import Preset

__all__ = ["ALL", "MAIN", "Preset", "UnknownExperimentError", "load", "preset_file"]

# The main job (`make run`): the sweeps that measure scaling exponents, cheapest first.
MAIN = ("lazy_scaling", "resolution_limits", "double_descent", "exponents", "lazy_rich")
# Every experiment, in the order the theory builds its chain of claims.
ALL = ("kato_demo", "shell_budget", "lazy_rich", "lazy_scaling", "exponents",
       "renormalizability", "resolution_limits", "double_descent", "network_scaling")


class UnknownExperimentError(KeyError):
    """A name that is not one of `ALL`."""

    def __str__(self):
        return self.args[0]


def load(name: str) -> ModuleType:
    """The experiment module `name`. **Raises:** `UnknownExperimentError` naming the known
    experiments."""
    if name not in ALL:
        import difflib

        close = difflib.get_close_matches(name, ALL, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownExperimentError(
            f"unknown experiment {name!r}{hint}; known: {', '.join(ALL)}"
        )
    return importlib.import_module(f"spectral_jax.experiments.{name}")


def is_sweep(module: ModuleType) -> bool:
    return hasattr(module, "SWEEP")


def preset_file(name: str, preset: Preset | str) -> pathlib.Path:
    """The TOML preset of sweep experiment `name` shipped with the package."""
    path = resources.files("spectral_jax.experiments") / "presets" / f"{name}.{Preset(preset)}.toml"
    return pathlib.Path(str(path))


def sweeps() -> dict:
    """Sweep name → `Sweep`, for every sweep experiment (used to run a TOML file)."""
    found = {}
    for name in ALL:
        module = load(name)
        if is_sweep(module):
            found[module.SWEEP.name] = module
    return found
