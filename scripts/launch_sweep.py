"""Run the full-preset scaling sweeps on whatever devices JAX sees, and say where results are.

    python scripts/launch_sweep.py                     # `make run`'s sweeps, full preset
    python scripts/launch_sweep.py lazy_scaling --preset quick --out /scratch/results
    python scripts/launch_sweep.py --distributed       # one call per host of a multi-host job

Device-agnostic: the sweep engine shards each batch over `jax.local_devices()` (CPU, GPU or
TPU alike). With `--distributed`, `jax.distributed.initialize()` is called first with no
arguments, so JAX reads the cluster from its environment (SLURM, Open MPI, Cloud TPU, or the
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables); each process then
computes and writes its own share of the configurations into the shared output folder.
"""

import argparse
import pathlib
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["main"], help="experiments (default: main)")
    parser.add_argument("--preset", default="full", choices=["quick", "full"])
    parser.add_argument("--out", default="results", type=pathlib.Path)
    parser.add_argument("--distributed", action="store_true",
                        help="call jax.distributed.initialize() first (multi-host jobs)")
    args = parser.parse_args()

    import jax

    if args.distributed:
        jax.distributed.initialize()
    devices = jax.local_devices()
    print(f"process {jax.process_index()}/{jax.process_count()}: {len(devices)} local "
          f"{devices[0].platform} device(s) ({devices[0].device_kind}); "
          f"{jax.device_count()} in all", flush=True)

    from spectral_jax.cli import main as cli_main

    start = time.perf_counter()
    status = cli_main(["run", *args.names, "--preset", args.preset, "--out", str(args.out)])
    where = (args.out / args.preset).resolve()
    print(f"\nfinished in {time.perf_counter() - start:.0f} s with status {status}; results in "
          f"{where}/ (summary.md: the exponent table; <name>.json and <name>.png per experiment;"
          f" <name>/records/: one Parquet record per configuration)", flush=True)
    if args.distributed:
        jax.distributed.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
