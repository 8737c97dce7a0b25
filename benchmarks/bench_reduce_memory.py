"""Peak resident memory of `solve_kato(..., reduce=shell_budget)` vs the same solve without it.

    python benchmarks/bench_reduce_memory.py                   # n = 1024, T = 400; writes the .md
    python benchmarks/bench_reduce_memory.py --n 256 --times 100 --out /tmp/x.md   # smoke run

OPENBLAS_NUM_THREADS defaults to 1 (also in the child processes).

Every case runs in a fresh child process (`python bench_reduce_memory.py --child CASE`) that
imports `spectral_jax`, enables float64, builds the operator and then (except for the baseline)
runs one `solve_kato`, and reports `resource.getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux)
after the solve, with VmHWM / VmRSS from /proc/self/status as a cross-check. The parent does not
import JAX, so that what a child inherits across fork/exec (ru_maxrss can carry the parent's
peak) is a bare interpreter.

Operator: `sj.RotatingPowerLaw(λ_k = k⁻¹, sj.banded_generator(n, 2, 1e-4))`, e0 ~ N(0, 1),
`ts = linspace(0, 1e-3, T)`: λ_max·Δt = 1e-3, so the default solver is Tsit5 and the solve takes
a few steps; the cost is the T saved times, each an `eigh` of M(t) and a handful of n×n
products (`save_outputs`). Shells: `sj.LogShells(1.1, 2.0, 12)`, reduce =
`functools.partial(sj.shell_budget, shells)`; self-check on (default), so the reduction is also
applied to the reference coefficients.

Cases:
- baseline: import, operator, e0 (no solve);
- reduce at T and at `--compare-times` (to show the peak does not grow with T);
- no reduce at `--compare-times`; then at T only if it is predicted to fit: predicted peak =
  (peak at the smaller T) + 2·(T − T_small)·n²·8 bytes must be below `--mem-fraction` of
  MemAvailable. Otherwise it is reported as not run, with the prediction.

The stored outputs without reduce are `generator` and `frames`, (T, n, n) float64 each:
2·T·n²·8 bytes (6.7 GB at n = 1024, T = 400).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

MB = 1e6  # bytes; peaks are given in MB = 10^6 bytes
TARGET_BYTES = 1e9  # the issue's target: ≤ 1 GB with reduce at n = 1024, T = 400


def _proc_status() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024  # kB → bytes
    except OSError:
        pass
    return out


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def child(case: str, n: int, times: int) -> None:
    import functools

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import spectral_jax as sj

    k = np.arange(1, n + 1, dtype=np.float64)
    op = sj.RotatingPowerLaw(jnp.asarray(k**-1), jnp.asarray(sj.banded_generator(n, 2, 1e-4)))
    e0 = jnp.asarray(np.random.default_rng(0).normal(size=n))
    ts = jnp.linspace(0.0, 1e-3, times)
    shells = sj.LogShells(1.1, 2.0, 12)
    jax.block_until_ready((op, e0, ts))
    before = _proc_status()
    out = {"case": case, "n": n, "times": times, "rss_before": before.get("VmRSS")}
    if case != "baseline":
        reduce = functools.partial(sj.shell_budget, shells) if case == "reduce" else None
        start = time.perf_counter()
        sol = sj.solve_kato(op, e0, ts, reduce=reduce)
        leaves = jax.block_until_ready(jax.tree_util.tree_leaves(sol))
        out["wall"] = time.perf_counter() - start
        out["stored_bytes"] = int(sum(x.nbytes for x in leaves if hasattr(x, "nbytes")))
        out["accepted"] = sol.stats["num_accepted_steps"]
        out["rhs"] = sol.stats.get("rhs_evaluations")
        out["succeeded"] = bool(sol.succeeded)
        if case == "reduce":
            assert sol.generator is None and sol.frames is None
            out["reduced_shape"] = list(sol.reduced.transfer.shape)
    after = _proc_status()
    out["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB → bytes
    out["vmhwm"] = after.get("VmHWM")
    out["rss_after"] = after.get("VmRSS")
    print(json.dumps(out), flush=True)


def run_case(case: str, n: int, times: int) -> dict:
    cmd = [sys.executable, "-u", __file__, "--child", case, "--n", str(n), "--times", str(times)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        result = {"case": case, "n": n, "times": times, "failed": " / ".join(tail)}
    else:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - start
    print(f"{case} T={times}: {result}", flush=True)
    return result


def _mb(x) -> str:
    return "—" if x is None else f"{x / MB:,.0f}"


def markdown(args, rows, baseline, notes) -> str:
    lines = [
        "# Peak memory of `solve_kato` with and without `reduce`",
        "",
        f"Command: `python benchmarks/bench_reduce_memory.py {' '.join(sys.argv[1:])}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{(_mem_available() or 0) / 1e9:.1f} GB available at the end; float64, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; shared with other "
        "jobs (wall times indicative).",
        "",
        f"`RotatingPowerLaw(λ_k = k⁻¹, banded_generator({args.n}, 2, 1e-4))`, n = {args.n}, "
        "ts = linspace(0, 1e-3, T) (Tsit5 by default at this horizon), self-check on; reduce = "
        "`functools.partial(sj.shell_budget, sj.LogShells(1.1, 2.0, 12))`. Each row is a fresh "
        "process; peak = `ru_maxrss` after the solve (VmHWM agrees unless noted). "
        "MB = 10⁶ bytes.",
        "",
        "| case | T | stored outputs (MB) | (T, n, n) arrays 2·T·n²·8 (MB) | peak RSS (MB) "
        "| VmHWM (MB) | RSS after solve (MB) | peak − baseline (MB) | accepted steps "
        "| solve wall (s) | process wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_peak = baseline.get("ru_maxrss")
    for r in rows:
        label = {"baseline": "baseline: import + operator", "reduce": "`reduce=shell_budget`",
                 "full": "no reduce"}[r["case"]]
        if "failed" in r or "skipped" in r:
            why = r.get("failed") or r.get("skipped")
            lines.append(f"| {label} | {r['times']} | {why} |" + " |" * 8)
            continue
        tnn = 2 * r["times"] * r["n"] ** 2 * 8 if r["case"] == "full" else None
        delta = None if r["case"] == "baseline" else r["ru_maxrss"] - base_peak
        lines.append(
            f"| {label} | {r['times'] if r['case'] != 'baseline' else '—'} "
            f"| {_mb(r.get('stored_bytes'))} | {_mb(tnn)} | {_mb(r['ru_maxrss'])} "
            f"| {_mb(r.get('vmhwm'))} | {_mb(r.get('rss_after'))} | {_mb(delta)} "
            f"| {r.get('accepted', '—')} "
            f"| {'—' if 'wall' not in r else format(r['wall'], '.1f')} | {r['process_wall']:.1f} |"
        )
    lines += [""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--times", type=int, default=400, help="saved times T")
    parser.add_argument("--compare-times", type=int, default=40,
                        help="smaller T for the no-reduce run (and a reduce run at the same T)")
    parser.add_argument("--mem-fraction", type=float, default=0.6,
                        help="run no-reduce at T only if its predicted peak < this × MemAvailable")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "reduce_memory.md"))
    parser.add_argument("--child", choices=["baseline", "reduce", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.n, args.times)
        return

    small = min(args.compare_times, args.times)
    baseline = run_case("baseline", args.n, args.times)
    rows = [baseline]
    rows.append(run_case("reduce", args.n, args.times))
    if small != args.times:
        rows.append(run_case("reduce", args.n, small))
    full_small = run_case("full", args.n, small)
    rows.append(full_small)
    notes = []
    reduce_main = rows[1]
    if "failed" not in reduce_main:
        peak = reduce_main["ru_maxrss"]
        verdict = "meets" if peak <= TARGET_BYTES else "**misses**"
        notes.append(
            f"With `reduce`, n = {args.n}, T = {args.times}: peak {peak / MB:,.0f} MB — "
            f"{verdict} the ≤ 1 GB target; the solve's own share (peak − baseline) is "
            f"{(peak - baseline['ru_maxrss']) / MB:,.0f} MB."
        )
    if small != args.times and "failed" not in full_small:
        # The small run's peak plus the (T, n, n) arrays the extra saved times add.
        predicted = full_small["ru_maxrss"] + 2 * (args.times - small) * args.n**2 * 8
        available = _mem_available()
        if available is not None and predicted < args.mem_fraction * available:
            rows.append(run_case("full", args.n, args.times))
        else:
            rows.append({
                "case": "full", "n": args.n, "times": args.times,
                "skipped": f"not run: predicted peak {predicted / 1e9:.1f} GB, "
                f"{(available or 0) / 1e9:.1f} GB available",
            })
            notes.append(
                f"No reduce at T = {args.times} was not run: predicted peak "
                f"{predicted / 1e9:.1f} GB (the T = {small} run's peak + 2·ΔT·n²·8 bytes) "
                f"against {(available or 0) / 1e9:.1f} GB available; "
                f"the comparison is at T = {small}."
            )
    for r in rows:
        hwm, peak = r.get("vmhwm"), r.get("ru_maxrss")
        if hwm and peak and abs(hwm - peak) > 0.05 * peak:
            notes.append(
                f"{r['case']} T={r['times']}: ru_maxrss {r['ru_maxrss'] / MB:,.0f} MB and VmHWM "
                f"{r['vmhwm'] / MB:,.0f} MB differ by more than 5%."
            )
    text = markdown(args, rows, baseline, notes)
    print("\n" + text)
    pathlib.Path(args.out).write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
