"""What a sweep computes: `Sweep`, a typed parameter class and one function per configuration.

A sweep is declared once, in code:

- `parameters`: a frozen dataclass, the schema of one configuration. Its fields name every
  key a TOML file may set, their types are checked on load, and its `__post_init__` rejects
  impossible values (with a message that names them).
- `compute(params) -> {name: array}`: the outputs of one configuration. `params` is a plain
  mapping with one value per field.
- `batched`: the fields that may differ inside one compiled batch (numbers: exponents,
  scales, seeds). Under `Execution.VMAP` they reach `compute` as traced 0-d arrays and the
  function is `jax.vmap`-ed over them; every other field is static (it may set array shapes),
  so configurations that differ in a static field run in separate batches.
- `execution`: `VMAP` (the default) or `EACH`, for a `compute` that needs concrete values
  (adaptive solvers that choose their method from the data, host-side numpy): then the engine
  calls it once per configuration and does not compile it itself. Under `EACH`, `batched`
  (of any type) only groups work: configurations that differ in `batched` fields alone share
  their compilations, so local workers (`SweepOptions.workers`) keep them together.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Execution", "Sweep", "parameter_types"]


class Execution(enum.StrEnum):
    """How the engine runs a sweep's `compute` (see the module docstring)."""

    VMAP = "vmap"
    EACH = "each"


def parameter_types(parameters: type) -> dict[str, type]:
    """Field name → declared type of a parameter dataclass (`str | int` style hints resolved)."""
    hints = typing.get_type_hints(parameters)
    return {f.name: hints[f.name] for f in dataclasses.fields(parameters)}


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A named computation over many configurations (see the module docstring).

    **Raises:** `TypeError` / `ValueError` naming the problem when `parameters` is not a frozen
    dataclass, or a `batched` name is not one of its numeric fields.
    """

    name: str
    parameters: type
    compute: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    batched: tuple[str, ...] = ()
    execution: Execution = Execution.VMAP
    description: str = ""

    def __post_init__(self):
        if not (dataclasses.is_dataclass(self.parameters) and isinstance(self.parameters, type)):
            raise TypeError(f"Sweep {self.name!r}: parameters must be a dataclass type")
        if not self.parameters.__dataclass_params__.frozen:
            raise TypeError(f"Sweep {self.name!r}: the parameters dataclass must be frozen")
        types = parameter_types(self.parameters)
        for name in self.batched:
            if name not in types:
                raise ValueError(
                    f"Sweep {self.name!r}: batched field {name!r} is not a parameter "
                    f"(parameters: {sorted(types)})"
                )
            if self.execution == Execution.VMAP and types[name] not in (int, float):
                raise ValueError(
                    f"Sweep {self.name!r}: batched field {name!r} must be int or float (it is "
                    f"traced under vmap), got {types[name]}"
                )
        object.__setattr__(self, "execution", Execution(self.execution))

    @property
    def static(self) -> tuple[str, ...]:
        """The fields that set a batch (all but `batched`), in declaration order."""
        return tuple(f.name for f in dataclasses.fields(self.parameters)
                     if f.name not in self.batched)
