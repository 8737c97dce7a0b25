"""Run an `Execution.EACH` sweep in parallel local processes (`SweepOptions.workers`).

On a CPU an EACH sweep (adaptive solvers, training loops) at small sizes spends most of its
time compiling. One process keeps about 1.5 cores busy, so on a machine with many more cores
N worker processes compile and run N units of work at once (on 2 cores they gain nothing:
docs/sweeps.md).

- A **unit** is the configurations that share their static fields (they reuse one compiled
  function); it goes to one worker, whole, so no compilation is repeated for it.
- Workers take units from a queue as they finish (`ProcessPoolExecutor`), so one slow unit
  does not hold back the others. A worker that dies (killed, out of memory) stops the sweep
  with an error instead of a hang; its finished records stay, and a rerun resumes.
- Each worker writes its own records to the shared `ResultStore` (one file per configuration,
  renamed into place), exactly as one process would; the parent only counts progress.
- On an accelerator, or under `jax.distributed`, the sweep runs in the calling process (with
  a printed note): workers are for the compile-bound CPU case.
- Workers are started with "spawn", never "fork": a fork of a process whose JAX runtime has
  started its threads can deadlock. So the sweep (its `compute` and `parameters`) must be
  picklable: defined at module level, not a lambda or a local function.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Sequence
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool

import jax

from .spec import Sweep
from .store import ResultStore

__all__ = ["run_units_in_workers", "units_of_work", "usable_workers"]


def usable_workers(sweep: Sweep, workers: int) -> int:
    """How many local processes run `sweep` here: `workers` on a CPU backend, 1 (with a note)
    on an accelerator or under `jax.distributed`; fails before anything runs when the sweep
    cannot be sent to another process."""
    if workers <= 1:
        return 1
    if jax.process_count() > 1 or jax.default_backend() != "cpu":
        # On an accelerator each process would claim its own share of the device memory, and
        # under jax.distributed every process is already one worker.
        print(f"[sweep {sweep.name}] options.workers = {workers} applies to a single CPU "
              f"process only (backend {jax.default_backend()!r}, {jax.process_count()} "
              f"process(es)): running in this process", flush=True)
        return 1
    try:
        pickle.dumps(sweep)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise TypeError(f"run_sweep: options.workers > 1 sends sweep {sweep.name!r} to other "
                        f"processes, so its compute and parameters must be defined at module "
                        f"level (picklable): {exc}") from None
    return workers


def units_of_work(configurations: Sequence, todo: Sequence[int],
                  key: Callable) -> list[list[int]]:
    """`todo` split into units of equal static fields (`key(config)`), in first-seen order."""
    units: dict[tuple, list[int]] = {}
    for i in todo:
        units.setdefault(key(configurations[i]), []).append(i)
    return list(units.values())


def _init_worker(x64: bool) -> None:
    # A spawned interpreter starts from JAX's defaults: carry the caller's precision over.
    jax.config.update("jax_enable_x64", x64)


def _run_unit(job) -> tuple[int, int, float]:
    """In a worker: compute and store one unit; returns (configurations, failed, seconds)."""
    from .engine import _Runner

    sweep, directory, configs, cids = job
    runner = _Runner(sweep, ResultStore(directory), progress=False, total=len(configs))
    failed = sum(not runner.one(config, cid) for config, cid in zip(configs, cids))
    return len(configs), failed, runner.run_seconds


def run_units_in_workers(sweep: Sweep, store: ResultStore, units: list[list],
                         ids: list[list[str]], workers: int, on_done: Callable) -> float:
    """Run `units` (lists of configurations, with their `ids`) in `workers` processes;
    `on_done(count, note)` after each unit. Returns the summed compute seconds.

    **Raises:** `RuntimeError` when a worker process dies (killed, out of memory): the units
    finished until then are stored, and a rerun resumes after them."""
    context = multiprocessing.get_context("spawn")
    seconds = 0.0
    with futures.ProcessPoolExecutor(
        min(workers, len(units)), mp_context=context, initializer=_init_worker,
        initargs=(bool(jax.config.jax_enable_x64),),
    ) as pool:
        pending = [pool.submit(_run_unit, (sweep, str(store.directory), unit, unit_ids))
                   for unit, unit_ids in zip(units, ids)]
        try:
            for future in futures.as_completed(pending):
                count, failed, unit_seconds = future.result()
                seconds += unit_seconds
                on_done(count, f"(unit of {count} in a worker"
                        + (f", {failed} FAILED)" if failed else ")"))
        except BrokenProcessPool:
            raise RuntimeError(f"sweep {sweep.name!r}: a worker process died (killed, or out "
                               f"of memory?); the finished configurations are stored, and "
                               f"running the sweep again resumes after them") from None
    return seconds
