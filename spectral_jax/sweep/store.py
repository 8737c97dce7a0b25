"""The result store: one self-describing Parquet file per configuration.

Why Parquet (through pyarrow) and one file per record:

- a record is written with one atomic rename (`atomic.py`), so a run killed at any instant
  (SIGKILL included) leaves every finished configuration complete and nothing half written;
- resuming is listing the folder: a configuration whose record is there is not computed again,
  and the file name (the configuration's id) makes a duplicate impossible;
- processes of a multi-host run write disjoint files, with no lock and no coordinator;
- the files read as one table with pyarrow, pandas, polars or DuckDB, and carry their schema.

xarray with zarr fits dense grids of arrays; our records are ragged (failures carry no
outputs, shape groups differ), which a table of rows holds without padding.

Layout: `<dir>/records/<config_id>.parquet`. Columns of a record: `sweep`, `config_id`,
`config` (JSON), one `config.<field>` column per parameter, `seed`, `status` (`ok` or
`failed`), `error`, `traceback`, `outputs` (JSON: name → shape and dtype) and one
`output.<name>` column per output (flattened float64), then provenance: package, JAX and jaxlib
versions, Python, platform, device kind and count, process index and count, compile and run
seconds of its batch, batch size, start and finish times.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .atomic import atomic_open

__all__ = ["Record", "ResultStore", "Status"]

_RECORDS = "records"
_SUFFIX = ".parquet"


class Status(enum.StrEnum):
    """The outcome of one configuration, as stored (its string value)."""

    OK = "ok"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Record:
    """One configuration's result, as stored.

    `config` is the parameter mapping, `outputs` maps names to numpy arrays (empty if failed),
    `meta` holds provenance and timings (see the module docstring).
    """

    sweep: str
    config_id: str
    config: Mapping[str, Any]
    status: str
    outputs: Mapping[str, np.ndarray]
    error: str = ""
    traceback: str = ""
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def content(self) -> tuple:
        """What two runs of one configuration must agree on: everything but provenance."""
        return (
            self.sweep, self.config_id, json.dumps(dict(self.config), sort_keys=True),
            self.status, {k: np.asarray(v).tolist() for k, v in sorted(self.outputs.items())},
        )


class ResultStore:
    """Records of sweeps under one folder (see the module docstring for the layout)."""

    def __init__(self, directory: str | pathlib.Path):
        self.directory = pathlib.Path(directory)
        self.records_dir = self.directory / _RECORDS

    def path(self, config_id: str) -> pathlib.Path:
        return self.records_dir / f"{config_id}{_SUFFIX}"

    def statuses(self) -> dict[str, str]:
        """config_id → status of every readable record (unreadable files count as absent)."""
        found = {}
        for path in sorted(self.records_dir.glob(f"*{_SUFFIX}")):
            status = _read_status(path)
            if status is not None:
                found[path.name[: -len(_SUFFIX)]] = status
        return found

    def write(self, record: Record) -> pathlib.Path:
        """Store `record` atomically (replacing an earlier record of its configuration)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([_row(record)])
        path = self.path(record.config_id)
        with atomic_open(path, "wb") as handle:
            pq.write_table(table, handle)
        return path

    def load(self, sweep: str | None = None) -> list[Record]:
        """Every readable record (of `sweep`, if given), ordered by config id."""
        records = []
        for path in sorted(self.records_dir.glob(f"*{_SUFFIX}")):
            record = _read_record(path)
            if record is not None and (sweep is None or record.sweep == sweep):
                records.append(record)
        return records


def _jsonable(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return getattr(value, "value", value)  # enums by value


def _row(record: Record) -> dict:
    config = {k: _jsonable(v) for k, v in record.config.items()}
    row: dict[str, Any] = {
        "sweep": record.sweep,
        "config_id": record.config_id,
        "config": json.dumps(config, sort_keys=True),
        "seed": config.get("seed"),
        "status": str(record.status),
        "error": record.error,
        "traceback": record.traceback,
    }
    for key, value in config.items():
        row[f"config.{key}"] = json.dumps(value) if isinstance(value, list) else value
    shapes = {}
    for name, value in record.outputs.items():
        array = np.asarray(value)
        shapes[name] = {"shape": list(array.shape), "dtype": str(array.dtype)}
        row[f"output.{name}"] = array.astype(np.float64).ravel().tolist()
    row["outputs"] = json.dumps(shapes, sort_keys=True)
    row.update({f"meta.{k}": v for k, v in record.meta.items()})
    return row


def _read_table(path: pathlib.Path, columns=None):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except Exception:  # a foreign or damaged file: not a record (writes are atomic)
        return None


def _read_status(path: pathlib.Path) -> str | None:
    table = _read_table(path, columns=["status"])
    return None if table is None or table.num_rows != 1 else table.column("status")[0].as_py()


def _read_record(path: pathlib.Path) -> Record | None:
    table = _read_table(path)
    if table is None or table.num_rows != 1:
        return None
    row = table.to_pylist()[0]
    outputs = {}
    for name, spec in json.loads(row["outputs"]).items():
        flat = np.asarray(row[f"output.{name}"], dtype=np.float64)
        outputs[name] = flat.reshape(spec["shape"]).astype(spec["dtype"])
    meta = {k[len("meta."):]: v for k, v in row.items() if k.startswith("meta.")}
    return Record(
        sweep=row["sweep"], config_id=row["config_id"], config=json.loads(row["config"]),
        status=row["status"], outputs=outputs, error=row["error"] or "",
        traceback=row["traceback"] or "", meta=meta,
    )


def records_table(records: Iterable[Record]) -> list[dict]:
    """Rows of scalar config values and scalar outputs, for printing and reports."""
    rows = []
    for record in records:
        row = dict(record.config)
        row["status"] = record.status
        for name, value in record.outputs.items():
            if np.ndim(value) == 0:
                row[name] = float(value)
        rows.append(row)
    return rows
