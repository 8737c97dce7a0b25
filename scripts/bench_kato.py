"""Cost of one right-hand-side evaluation of the Kato modewise ODE, against its floor.

The floor is what any eigenbasis method must pay per stage: one `jnp.linalg.eigh` of $M(t)$
plus the two n×n products of $G = \\Phi^T \\dot M \\Phi$. The Kato right-hand side
(`spectral_jax.modes.kato.kato_vector_field`) adds the overlap $R = V^T\\Phi$, the frame motion
$-VWR$ (three more products), $W$ (O(n²)) and the self-check's matrix–vector product. It takes
no branch, so a kernel with exact zero modes (one large cluster) must cost the same per
evaluation as a full-rank one: the table measures both side by side. The operator is a cheap
polynomial in t, $M(t) = S_0 + t S_1 + t^2 S_2$, so that its own evaluation does not hide the
solver's cost. Both are jitted; timings are medians (and minima) over interleaved repeats after
warm-up, so that load from other processes hits both alike.

A second table gives accepted steps and right-hand-side evaluations of `solve_kato` and
`solve_direct` on the rotating power law of docs/theory.md §2.2 (n = 64, t ∈ [0, 50]).

    python scripts/bench_kato.py                         # n = 256, 512, 1024; 15 repeats
    python scripts/bench_kato.py --sizes 64 128 --repeats 5 --no-rotating   # smoke run
    OPENBLAS_NUM_THREADS=1 python scripts/bench_kato.py   # on a shared, loaded machine

JAX's CPU `eigh` calls LAPACK through SciPy's OpenBLAS; on a small machine shared with other
processes OpenBLAS's own thread pool oversubscribes the cores and `eigh` times swing by 10-100×.
One BLAS thread gives stable numbers (the ratio is measured within one setting either way).

Prints markdown tables (paste them into benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def _operator_class():
    import spectral_jax as sj

    class PolynomialOperator(sj.AbstractOperator):
        """$M(t) = S_0 + t S_1 + t^2 S_2$ with $\\dot M = S_1 + 2t S_2$ in closed form."""

        s0: jax.Array
        s1: jax.Array
        s2: jax.Array

        def __call__(self, t):
            t = jnp.asarray(t, self.dtype)
            return self.s0 + t * self.s1 + t**2 * self.s2

        def value_and_derivative(self, t):
            t = jnp.asarray(t, self.dtype)
            return self(t), self.s1 + 2 * t * self.s2

        @property
        def dtype(self):
            return self.s0.dtype

    return PolynomialOperator


def polynomial_operator(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(n, n)) / np.sqrt(n)
    s0 = b @ b.T + 0.1 * np.eye(n)  # PSD with a spread (Marchenko–Pastur) spectrum
    c = rng.normal(size=(n, n)) / np.sqrt(n)
    s1 = 0.1 * (c + c.T) / 2
    s2 = 0.01 * s0
    return _operator_class()(jnp.asarray(s0), jnp.asarray(s1), jnp.asarray(s2))


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def interleaved(cases: dict, repeats: int, warmup: int = 2) -> dict:
    """{name: (median, min)} seconds; the cases are run in turn within every repeat."""
    for fn, args in cases.values():
        for _ in range(warmup):
            jax.block_until_ready(fn(*args))
    samples = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, args) in cases.items():
            samples[name].append(_timed(fn, *args))
    return {name: (statistics.median(v), min(v)) for name, v in samples.items()}


def low_rank_operator(n: int, rank: int, seed: int = 0):
    """$M(t) = (B + tC)(B + tC)^T / p$ with B, C of shape (n, p): exactly n − p zero modes."""
    rng = np.random.default_rng(seed)
    b, c = rng.normal(size=(n, rank)), 0.1 * rng.normal(size=(n, rank))
    s0, s1, s2 = b @ b.T / rank, (b @ c.T + c @ b.T) / rank, c @ c.T / rank
    return _operator_class()(jnp.asarray(s0), jnp.asarray(s1), jnp.asarray(s2))


def rhs_table(sizes, repeats: int) -> list[dict]:
    import equinox as eqx

    from spectral_jax.modes.clusters import Clusters
    from spectral_jax.modes.kato_field import KatoState, kato_vector_field
    from spectral_jax.modes.spectral_state import eigh_descending, fix_gauge

    relative_gap = Clusters().resolve(jnp.float64)
    rhs = eqx.filter_jit(lambda op, t, y: kato_vector_field(t, y, (op, relative_gap)))

    @jax.jit
    def floor(m, dm):
        _, v = jnp.linalg.eigh(m)
        return v.T @ dm @ v

    eigh = jax.jit(jnp.linalg.eigh)
    matmul = jax.jit(lambda a, b: a @ b)
    value = eqx.filter_jit(lambda op, t: op.value_and_derivative(t))
    rows = []
    for n in sizes:
        t = jnp.asarray(0.3)
        rng = np.random.default_rng(1)
        cases = {}
        for label, op in (("full", polynomial_operator(n)), ("zero", low_rank_operator(n, n // 2))):
            m, dm = op.value_and_derivative(t)
            frame = fix_gauge(eigh_descending(m)[1])  # the tracked frame a run would carry at t
            e = jnp.asarray(rng.normal(size=n))
            state = KatoState(frame, frame.T @ e, e, jnp.zeros(()))
            cases[f"rhs_{label}"] = (rhs, (op, t, state))
        op = polynomial_operator(n)
        m, dm = op.value_and_derivative(t)
        cases |= {
            "floor": (floor, (m, dm)),
            "eigh": (eigh, (m,)),
            "matmul": (matmul, (m, dm)),
            "operator": (value, (op, t)),
        }
        timing = interleaved(cases, repeats)
        rows.append({"n": n, **timing})
        print(
            f"  n={n}: rhs {timing['rhs_full'][0] * 1e3:.2f} ms (full rank), "
            f"{timing['rhs_zero'][0] * 1e3:.2f} ms (n/2 zero modes), "
            f"floor {timing['floor'][0] * 1e3:.2f} ms",
            flush=True,
        )
    return rows


def rotating_table(rtols=((1e-8, 1e-10), (1e-10, 1e-12))) -> list[dict]:
    import scipy.linalg

    import spectral_jax as sj

    rng = np.random.default_rng(20240601)
    n = 64
    lam = np.arange(1, n + 1, dtype=np.float64) ** -1.5
    b = rng.normal(size=(n, n)) * 0.2
    upper = np.triu(b * (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 3), 1)
    a = upper - upper.T
    c0 = rng.normal(size=n)
    ts = np.linspace(0.0, 50.0, 26)
    op = sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a))
    exact = np.stack([scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0 for t in ts])
    rows = []
    for rtol, atol in rtols:
        for name, solve in (("solve_kato", sj.solve_kato), ("solve_direct", sj.solve_direct)):
            args = (op, jnp.asarray(c0), jnp.asarray(ts))
            jax.block_until_ready(solve(*args, rtol=rtol, atol=atol))  # compile
            start = time.perf_counter()
            sol = jax.block_until_ready(solve(*args, rtol=rtol, atol=atol))
            wall = time.perf_counter() - start
            if name == "solve_kato":
                err = np.max(
                    np.linalg.norm(np.asarray(sol.coefficients) - exact, axis=1)
                    / np.linalg.norm(exact, axis=1)
                )
            else:
                exact_e = np.stack([scipy.linalg.expm(a * t) @ c for t, c in zip(ts, exact)])
                err = np.max(
                    np.linalg.norm(np.asarray(sol.residuals) - exact_e, axis=1)
                    / np.linalg.norm(exact_e, axis=1)
                )
            st = sol.stats
            rows.append(
                {
                    "solver": name,
                    "rtol": rtol,
                    "atol": atol,
                    "accepted": st["num_accepted_steps"],
                    "rejected": st["num_rejected_steps"],
                    "rhs": st["rhs_evaluations"],
                    "wall": wall,
                    "err": err,
                }
            )
            print(f"  {name} rtol={rtol:g}: {st}", flush=True)
    return rows


def machine() -> str:
    cpus = os.cpu_count()
    try:
        load = f", load average {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    backend = f"JAX {jax.__version__} on {jax.default_backend()} ({devices})"
    return (
        f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {cpus} CPU cores{load}; {backend}, float64; OPENBLAS_NUM_THREADS={blas}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--no-rotating", action="store_true", help="skip the solver-statistics table"
    )
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # a script, not the library: analysis in float64

    print(f"Machine: {machine()}\n", flush=True)
    rows = rhs_table(args.sizes, args.repeats)
    print(
        "\n### One right-hand-side evaluation vs its floor (median over "
        f"{args.repeats} interleaved repeats; min in brackets)\n"
    )
    print(
        "| n | Kato RHS, full rank (ms) | Kato RHS, n/2 zero modes (ms) | zero / full |"
        " floor: eigh + 2 matmuls (ms) | full / floor | eigh (ms) | matmul (ms) | M, Ṁ (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ms = {k: (v[0] * 1e3, v[1] * 1e3) for k, v in r.items() if k != "n"}
        print(
            f"| {r['n']} | {ms['rhs_full'][0]:.2f} [{ms['rhs_full'][1]:.2f}] "
            f"| {ms['rhs_zero'][0]:.2f} [{ms['rhs_zero'][1]:.2f}] "
            f"| {ms['rhs_zero'][0] / ms['rhs_full'][0]:.2f}× "
            f"| {ms['floor'][0]:.2f} [{ms['floor'][1]:.2f}] "
            f"| {ms['rhs_full'][0] / ms['floor'][0]:.2f}× | {ms['eigh'][0]:.2f} "
            f"| {ms['matmul'][0]:.2f} | {ms['operator'][0]:.3f} |"
        )
    if not args.no_rotating:
        rot = rotating_table()
        print(
            "\n### Rotating power law (n = 64, λ_k = k^-1.5, banded A, t ∈ [0, 50], Tsit5, "
            "PID controller)\n"
        )
        print(
            "| solver | rtol | atol | accepted steps | rejected | RHS evaluations | wall (s) |"
            " max rel. error vs expm |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rot:
            print(
                f"| `{r['solver']}` | {r['rtol']:g} | {r['atol']:g} | {r['accepted']} "
                f"| {r['rejected']} "
                f"| {r['rhs']} | {r['wall']:.2f} | {r['err']:.1e} |"
            )


if __name__ == "__main__":
    main()
