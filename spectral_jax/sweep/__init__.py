"""Sweeps: many configurations of one computation, batched, sharded, stored and resumable.

- `spec`: `Sweep` (a typed parameter dataclass and `compute`) and `Execution`;
- `config`: TOML sweep files and their typed form (`SweepConfig`, `SweepOptions`,
  `ConfigError`);
- `engine`: `run_sweep`, which batches under `jit(vmap)` and shards over local devices;
- `store`: `ResultStore` and `Record`, one atomic Parquet file per configuration;
- `provenance`, `atomic`: what every record carries, and how files are written.
"""

from .config import (
    ConfigError as ConfigError,
    SweepConfig as SweepConfig,
    SweepOptions as SweepOptions,
    build_parameters as build_parameters,
    load_sweep_config as load_sweep_config,
    parse_sweep_config as parse_sweep_config,
)
from .engine import SweepOutcome as SweepOutcome, config_id as config_id, run_sweep as run_sweep
from .spec import Execution as Execution, Sweep as Sweep
from .store import (
    Record as Record,
    ResultStore as ResultStore,
    Status as Status,
    records_table as records_table,
)
