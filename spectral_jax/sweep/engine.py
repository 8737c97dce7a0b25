"""Run a sweep: batch configurations under one `jit(vmap(...))`, shard the batch over devices.

`run_sweep(sweep, configurations, store)`:

1. Gives each configuration an id (a hash of the sweep name and its canonical JSON).
2. In a multi-process run (`jax.distributed.initialize` called before), keeps the
   configurations of this process: every `process_count`-th, from `process_index`. Each process
   writes its own records; no coordination is needed beyond JAX's own runtime.
3. Skips the configurations already stored as finished (resume after an interruption).
4. Groups the rest by their static fields (equal static fields, equal array shapes), splits a
   group into batches of at most `options.batch_size`, pads a batch to a multiple of the local
   device count (repeating its last configuration; the copies are dropped), and runs it as one
   compiled call whose batch axis is sharded over a one-axis `Mesh` of the local devices.
   One compilation per (static fields, padded batch size), counted in the outcome.
5. Stores one record per configuration as soon as its batch finishes. A batch that raises is
   run again one configuration at a time, so a failing configuration is stored as failed with
   its own error and every other one still gets its result.

`Execution.EACH` sweeps skip step 4's batching: `compute` is called once per configuration,
in this process or, with `options.workers` > 1, in that many local processes (`workers`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .config import SweepOptions
from .provenance import provenance
from .spec import Execution, Sweep
from .store import Record, ResultStore, Status
from .workers import run_units_in_workers, units_of_work, usable_workers

__all__ = ["SweepOutcome", "config_id", "run_sweep"]


def config_id(sweep_name: str, config) -> str:
    """A stable id of one configuration: sha256 of the sweep name and canonical JSON."""
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    text = json.dumps([sweep_name, values], sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _plain(value):
    return getattr(value, "value", str(value))


@dataclasses.dataclass(frozen=True)
class SweepOutcome:
    """What `run_sweep` did. `records`: this process's records of the requested
    configurations, in their order; `compilations`: compiled batch functions built."""

    records: list[Record]
    computed: int
    skipped: int
    failed: int
    compilations: int
    compile_seconds: float
    run_seconds: float


def run_sweep(
    sweep: Sweep,
    configurations: Sequence,
    store: ResultStore,
    *,
    options: SweepOptions = SweepOptions(),
    progress: bool = True,
) -> SweepOutcome:
    """Compute every configuration not yet stored, and store one record for each.

    **Arguments:** `sweep`: the `Sweep`; `configurations`: instances of `sweep.parameters`
    (e.g. from `SweepConfig.configurations(sweep)`); `store`: the `ResultStore`; `options`:
    `SweepOptions`; `progress`: show a progress bar (a line per batch when not on a terminal).

    **Returns:** a `SweepOutcome`. **Raises:** `TypeError` for a configuration of the wrong
    type; errors inside `compute` are stored as failed records instead.
    """
    for config in configurations:
        if not isinstance(config, sweep.parameters):
            raise TypeError(f"run_sweep: configurations must be {sweep.parameters.__name__} "
                            f"instances, got {type(config).__name__}")
    workers = usable_workers(sweep, options.workers) if sweep.execution is Execution.EACH else 1
    ids = [config_id(sweep.name, c) for c in configurations]
    mine = [i for i in range(len(ids)) if i % jax.process_count() == jax.process_index()]
    stored = store.statuses()
    done = {Status.OK} if options.retry_failed else {Status.OK, Status.FAILED}
    todo = [i for i in mine if stored.get(ids[i]) not in done]
    runner = _Runner(sweep, store, progress=progress, total=len(todo))
    with runner:
        if workers > 1 and todo:
            units = _groups(sweep, configurations, todo)
            runner.run_seconds = run_units_in_workers(
                sweep, store, [[configurations[i] for i in u] for u in units],
                [[ids[i] for i in u] for u in units], workers, runner.advance)
        elif sweep.execution is Execution.EACH:
            for i in todo:
                runner.one(configurations[i], ids[i])
        else:
            for batch in _batches(sweep, configurations, todo, options.batch_size):
                runner.batch([configurations[i] for i in batch], [ids[i] for i in batch])
    by_id = {r.config_id: r for r in store.load(sweep.name)}
    records = [by_id[ids[i]] for i in mine if ids[i] in by_id]
    return SweepOutcome(
        records=records, computed=len(todo), skipped=len(mine) - len(todo),
        failed=sum(not r.ok for r in records), compilations=len(runner.compiled),
        compile_seconds=runner.compile_seconds, run_seconds=runner.run_seconds,
    )


def _static_key(sweep: Sweep, config) -> tuple[str, ...]:
    """Configurations with equal keys have equal array shapes (they share compilations)."""
    return tuple(json.dumps(getattr(config, f), default=_plain) for f in sweep.static)


def _groups(sweep: Sweep, configurations, todo) -> list[list[int]]:
    return units_of_work(configurations, todo, lambda c: _static_key(sweep, c))


def _batches(sweep: Sweep, configurations, todo, batch_size):
    for members in _groups(sweep, configurations, todo):
        size = batch_size or len(members)
        for start in range(0, len(members), size):
            yield members[start:start + size]


def _as_mapping(outputs, sweep: Sweep) -> dict[str, Any]:
    if not isinstance(outputs, Mapping):
        raise TypeError(f"sweep {sweep.name!r}: compute must return a mapping name -> array, "
                        f"got {type(outputs).__name__}")
    return dict(outputs)


class _Runner:
    """Runs batches or single configurations and writes their records."""

    def __init__(self, sweep: Sweep, store: ResultStore, *, progress: bool, total: int):
        self.sweep, self.store, self.total = sweep, store, total
        self.compiled: dict[tuple, Any] = {}
        self.compile_seconds = 0.0
        self.run_seconds = 0.0
        self.devices = jax.local_devices()
        self.mesh = Mesh(np.array(self.devices), ("batch",))
        self.meta = provenance()
        self._bar = None
        self._live = progress and sys.stderr.isatty()
        self._log = progress and not self._live
        self._done = 0

    def __enter__(self):
        if self._live and self.total:
            from rich.progress import Progress

            self._bar = Progress(transient=False)
            self._bar.start()
            self._task = self._bar.add_task(f"sweep {self.sweep.name}", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()

    def advance(self, count: int, note: str = ""):
        self._done += count
        if self._bar is not None:
            self._bar.update(self._task, advance=count)
        elif self._log:
            print(f"[sweep {self.sweep.name}] {self._done}/{self.total} {note}", flush=True)

    def _store(self, config, cid, outputs=None, exc=None, tb="", timing=None):
        record = Record(
            sweep=self.sweep.name, config_id=cid, config=dataclasses.asdict(config),
            status=Status.OK if exc is None else Status.FAILED,
            outputs={} if outputs is None else outputs,
            error="" if exc is None else f"{type(exc).__name__}: {exc}", traceback=tb,
            meta={**self.meta, **(timing or {})},
        )
        self.store.write(record)

    def one(self, config, cid) -> bool:
        """Compute and store one configuration; False if it failed (stored as failed)."""
        params = dataclasses.asdict(config)
        start = time.perf_counter()
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            outputs = _as_mapping(self.sweep.compute(params), self.sweep)
            outputs = {k: np.asarray(jax.block_until_ready(v)) for k, v in outputs.items()}
        except Exception as exc:  # stored as a failed record; the sweep goes on
            self._store(config, cid, exc=exc, tb=traceback.format_exc())
            self.advance(1, f"FAILED {cid}: {exc!r}")
            return False
        seconds = time.perf_counter() - start
        self.run_seconds += seconds
        self._store(config, cid, outputs, timing=dict(
            compile_seconds=0.0, run_seconds=seconds, batch_size=1,
            started_at=started, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S")))
        self.advance(1)
        return True

    def batch(self, configs, cids):
        started = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            outputs, timing = self._run_batch(configs)
        except Exception:  # isolate the failing configuration(s)
            for config, cid in zip(configs, cids):
                self.one(config, cid)
            return
        timing.update(started_at=started, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
        for j, (config, cid) in enumerate(zip(configs, cids)):
            self._store(config, cid, {k: np.asarray(v[j]) for k, v in outputs.items()},
                        timing=timing)
        self.advance(len(configs), f"(batch of {len(configs)}, {timing['run_seconds']:.2f} s)")

    def _run_batch(self, configs):
        sweep = self.sweep
        first = dataclasses.asdict(configs[0])
        static = {f: first[f] for f in sweep.static}
        padded = len(self.devices) * math.ceil(len(configs) / len(self.devices))
        rows = list(configs) + [configs[-1]] * (padded - len(configs))
        sharding = NamedSharding(self.mesh, PartitionSpec("batch"))
        inputs = {
            f: jax.device_put(jnp.asarray([getattr(c, f) for c in rows]), sharding)
            for f in sweep.batched
        }
        key = (_static_key(sweep, configs[0]), padded)
        compile_seconds = 0.0
        if key not in self.compiled:
            start = time.perf_counter()

            def one_config(batched):
                return _as_mapping(sweep.compute({**static, **batched}), sweep)

            function = jax.jit(jax.vmap(one_config))
            self.compiled[key] = function.lower(inputs).compile()
            compile_seconds = time.perf_counter() - start
            self.compile_seconds += compile_seconds
        start = time.perf_counter()
        outputs = jax.block_until_ready(self.compiled[key](inputs))
        outputs = {k: np.asarray(v)[: len(configs)] for k, v in outputs.items()}
        seconds = time.perf_counter() - start
        self.run_seconds += seconds
        return outputs, dict(compile_seconds=compile_seconds, run_seconds=seconds,
                             batch_size=len(configs), padded_batch_size=padded)
