"""Sweep configuration files (TOML) and their typed, frozen form `SweepConfig`.

A file names its sweep and declares its configurations in up to three tables::

    sweep = "lazy_scaling"          # which sweep (see `spectral-jax list`)

    [fixed]                         # one value, shared by every configuration
    num_times = 49

    [grid]                          # lists: their Cartesian product
    alpha = [1.0, 1.5, 2.0]
    beta = [1.5, 2.0]

    [[cases]]                       # optional: explicit configurations, each crossed with grid
    shell_ratio = 2.0

    [options]                       # how to run, not what: see `SweepOptions`
    batch_size = 64

Every key is checked against the sweep's parameter dataclass on load: an unknown or misspelt
key, a value of the wrong type and a value the dataclass rejects all raise `ConfigError`, which
names the file, the key and the problem (with the closest known key for a misspelling).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import pathlib
import tomllib
import typing
from collections.abc import Mapping
from typing import Any

from .spec import Sweep, parameter_types

__all__ = ["ConfigError", "SweepConfig", "SweepOptions", "build_parameters", "load_sweep_config",
           "parse_sweep_config"]

_TABLES = ("sweep", "fixed", "grid", "cases", "options")


class ConfigError(ValueError):
    """A sweep configuration that cannot be run; the message names the key and the problem."""


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs (not what it computes).

    - `batch_size`: most configurations per compiled call (None: a whole shape group). Padded
      up to a multiple of the local device count.
    - `retry_failed`: on a rerun, compute again the configurations stored as failed.
    - `workers`: local processes for an `Execution.EACH` sweep on the CPU (1: this process).
      Each worker takes whole groups of configurations with equal static fields
      (`spectral_jax.sweep.workers`). One process already keeps about 1.5 cores busy, so this
      pays on many-core CPUs only (on 2 cores it was slower). Ignored by `Execution.VMAP`
      sweeps, whose batch already uses every core.
    """

    batch_size: int | None = None
    retry_failed: bool = True
    workers: int = 1

    def __post_init__(self):
        if self.batch_size is not None and (
            isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise ConfigError(f"options.batch_size must be a positive integer, got "
                              f"{self.batch_size!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or (
            self.workers < 1
        ):
            raise ConfigError(f"options.workers must be a positive integer, got "
                              f"{self.workers!r}")
        if not isinstance(self.retry_failed, bool):
            raise ConfigError(f"options.retry_failed must be true or false, got "
                              f"{self.retry_failed!r}")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A sweep name and its configurations: `fixed` values, `grid` axes, explicit `cases`."""

    sweep: str
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    grid: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    cases: tuple[Mapping[str, Any], ...] = ()
    options: SweepOptions = SweepOptions()
    source: str = "<config>"

    def configurations(self, sweep: Sweep) -> list:
        """Every configuration as an instance of `sweep.parameters` (validated), in order:
        cases outermost, then the grid axes in file order (the last varies fastest)."""
        if sweep.name != self.sweep:
            raise ConfigError(f"{self.source}: config is for sweep {self.sweep!r}, not "
                              f"{sweep.name!r}")
        types = parameter_types(sweep.parameters)
        _check_keys(self.fixed, types, self.source, "fixed")
        _check_keys(self.grid, types, self.source, "grid")
        for i, case in enumerate(self.cases):
            _check_keys(case, types, self.source, f"cases[{i}]")
        for key in self.grid:
            if key in self.fixed:
                raise ConfigError(f"{self.source}: {key!r} is both in [fixed] and in [grid]")
        names, axes = list(self.grid), [self.grid[k] for k in self.grid]
        configs = []
        for case in self.cases or ({},):
            for values in itertools.product(*axes):
                merged = {**self.fixed, **case, **dict(zip(names, values))}
                configs.append(_instantiate(sweep.parameters, merged, types, self.source))
        return configs


def load_sweep_config(path: str | pathlib.Path) -> SweepConfig:
    """Read a sweep TOML file into a `SweepConfig` (keys are checked against the sweep later,
    by `SweepConfig.configurations`).

    **Raises:** `ConfigError` for a missing file, invalid TOML, an unknown table, a missing
    `sweep` name, a grid axis that is not a non-empty list, or bad options.
    """
    path = pathlib.Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sweep configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return parse_sweep_config(raw, source=str(path))


def parse_sweep_config(raw: Mapping[str, Any], *, source: str = "<config>") -> SweepConfig:
    """`load_sweep_config` on an already parsed mapping (e.g. `tomllib.loads(text)`)."""
    unknown = [k for k in raw if k not in _TABLES]
    if unknown:
        hint = _hint(unknown[0], _TABLES)
        raise ConfigError(f"{source}: unknown top-level key(s) {unknown}{hint}; "
                          f"allowed: {list(_TABLES)}")
    if not isinstance(raw.get("sweep"), str):
        raise ConfigError(f"{source}: missing `sweep = \"<name>\"` (which sweep to run)")
    for table in ("fixed", "grid", "options"):
        if not isinstance(raw.get(table, {}), dict):
            raise ConfigError(f"{source}: [{table}] must be a table")
    grid = {}
    for key, values in raw.get("grid", {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid.{key} must be a non-empty list, got {values!r}")
        grid[key] = tuple(values)
    cases = raw.get("cases", [])
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ConfigError(f"{source}: cases must be an array of tables ([[cases]])")
    options = raw.get("options", {})
    known = [f.name for f in dataclasses.fields(SweepOptions)]
    bad = [k for k in options if k not in known]
    if bad:
        raise ConfigError(f"{source}: unknown option {bad[0]!r}{_hint(bad[0], known)}; "
                          f"options: {known}")
    try:
        parsed_options = SweepOptions(**options)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return SweepConfig(
        sweep=raw["sweep"], fixed=dict(raw.get("fixed", {})), grid=grid,
        cases=tuple(dict(c) for c in cases), options=parsed_options, source=source,
    )


def _hint(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(values: Mapping[str, Any], types: dict[str, type], source: str, where: str):
    for key in values:
        if key not in types:
            raise ConfigError(f"{source}: unknown key {where}.{key}{_hint(key, types)}; "
                              f"parameters: {sorted(types)}")


def _coerce(value, expected: type, key: str, source: str):
    # TOML has int and float apart; an int where a float is declared is a float.
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is tuple or typing.get_origin(expected) is tuple:
        if isinstance(value, list):
            return tuple(value)
    if isinstance(expected, type) and issubclass(expected, str) and isinstance(value, str):
        try:
            return expected(value)  # str enums: a name outside the enum is an error below
        except ValueError:
            choices = [m.value for m in expected]  # type: ignore[attr-defined]
            raise ConfigError(f"{source}: {key} = {value!r} is not one of {choices}") from None
    if isinstance(expected, type) and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{source}: {key} must be {expected.__name__}, got "
                          f"{type(value).__name__} {value!r}")
    return value


def _instantiate(parameters: type, values: dict, types: dict[str, type], source: str):
    coerced = {k: _coerce(v, types[k], k, source) for k, v in values.items()}
    missing = [f.name for f in dataclasses.fields(parameters)
               if f.name not in coerced and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{source}: missing value(s) for {missing} (set them in [fixed], "
                          f"[grid] or [[cases]])")
    try:
        return parameters(**coerced)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: impossible configuration {coerced}: {exc}") from None


def build_parameters(parameters: type, values: Mapping[str, Any], *, source: str = "<record>"):
    """An instance of the parameter dataclass from plain values (a stored record's config),
    with the same checks and coercions as a TOML file (str enums from their values)."""
    types = parameter_types(parameters)
    _check_keys(values, types, source, "config")
    return _instantiate(parameters, dict(values), types, source)
