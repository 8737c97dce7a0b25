"""Small sweeps for the engine's tests (cheap to compile, deterministic, shape-grouped).

Also a command-line worker, so that tests can run a sweep in a fresh process (forced device
counts, `jax.distributed`, SIGKILL):

    python tests/sweep_fixtures.py STORE SWEEP [--coordinator HOST:PORT --processes N --rank K]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import jax
import jax.numpy as jnp

from spectral_jax.sweep import Execution, Sweep

# Seconds each configuration waits (set by the worker's --sleep): room to kill a run. Not a
# parameter, so that a slowed run has the same configurations (and ids) as a plain one.
SLEEP_SECONDS = 0.0


@dataclasses.dataclass(frozen=True)
class ToyParameters:
    size: int = 8  # static: sets the matrix shape
    scale: float = 1.0
    seed: int = 0
    fail_above: float = 1e9  # compute raises for scale above this (EACH and the fallback)

    def __post_init__(self):
        if self.size < 2:
            raise ValueError(f"size must be >= 2, got {self.size}")


def toy_compute(params):
    """Eigenvalues and a loss curve of a random symmetric matrix: real linear algebra."""
    if isinstance(params["scale"], float) and params["scale"] > params["fail_above"]:
        raise FloatingPointError(f"scale {params['scale']} is above fail_above")
    if SLEEP_SECONDS:  # at run time, per configuration, in both executions
        jax.debug.callback(lambda: time.sleep(SLEEP_SECONDS))
    key = jax.random.key(params["seed"])
    g = jax.random.normal(key, (params["size"], params["size"]))
    m = params["scale"] * (g @ g.T) / params["size"]
    lam = jnp.linalg.eigvalsh(m)
    ts = jnp.geomspace(0.01, 100.0, 16)
    loss = jnp.sum(jnp.exp(-2.0 * lam[None, :] * ts[:, None]), axis=1)
    return {"eigenvalues": lam, "loss": loss, "trace": jnp.trace(m)}


TOY = Sweep(name="toy", parameters=ToyParameters, compute=toy_compute,
            batched=("scale", "seed"), execution=Execution.VMAP)
TOY_EACH = Sweep(name="toy_each", parameters=ToyParameters, compute=toy_compute,
                 batched=("scale", "seed"), execution=Execution.EACH)


def dying_compute(params):
    """`toy_compute`, but the process ends abruptly at seed 2 (a worker killed mid-sweep)."""
    if params["seed"] == 2:
        os._exit(3)
    return toy_compute(params)


TOY_DIES = Sweep(name="toy_dies", parameters=ToyParameters, compute=dying_compute,
                 batched=("scale", "seed"), execution=Execution.EACH)
SWEEPS = {s.name: s for s in (TOY, TOY_EACH)}


def toy_configurations(*, fail_above: float = 1e9):
    return [
        ToyParameters(size=size, scale=scale, seed=seed, fail_above=fail_above)
        for size in (6, 9) for scale in (0.5, 1.0, 2.0) for seed in (0, 1, 2)
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("sweep", choices=sorted(SWEEPS))
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--coordinator", default=None)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--rank", type=int, default=0)
    args = parser.parse_args()
    if args.coordinator:
        jax.distributed.initialize(args.coordinator, args.processes, args.rank)
    jax.config.update("jax_enable_x64", True)
    global SLEEP_SECONDS
    SLEEP_SECONDS = args.sleep
    from spectral_jax.sweep import ResultStore, SweepOptions, run_sweep

    outcome = run_sweep(SWEEPS[args.sweep], toy_configurations(),
                        ResultStore(args.store), options=SweepOptions(batch_size=args.batch_size),
                        progress=False)
    print(f"devices={jax.local_device_count()} process={jax.process_index()}/"
          f"{jax.process_count()} computed={outcome.computed} skipped={outcome.skipped} "
          f"compilations={outcome.compilations} pid={os.getpid()}", flush=True)
    if args.coordinator:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
