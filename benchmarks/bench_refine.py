"""Ogita–Aishima refinement (`spectral_jax.modes.refine`) against `eigh`, side by side.

    python benchmarks/bench_refine.py [--sizes 512 1024] [--repeats 3] [--out benchmarks/refine.md]

For each n and test matrix A = Q diag(λ) Qᵀ + δ E (‖E‖₂ ≈ 1, random symmetric; start basis the
exact Q of the unperturbed matrix — what the Kato solver's tracked frame is to M(t + h)):

- GEMM: one n×n product (the unit: refine ×k costs 4k + 2 of them);
- `eigh`: `jnp.linalg.eigh(A)`;
- floor: `eigh` + the two products Φᵀ Ṁ Φ (Ṁ = E), the least one Kato right-hand side costs;
- refine ×1, ×2: `refine_eigenbasis(A, Q, iterations=k)` (4k + 2 n×n products);
- fallback: `eigh_refined_or_fallback(A, Q)` (refine ×2, plus eigh when it does not converge).

All jitted, warmed up, then timed interleaved (one call of each per round, `block_until_ready`),
median over `--repeats` rounds. Accuracy: refinement vs `numpy.linalg.eigh` (max |Δλ| / λ_max),
its own residual ‖AX − XΛ‖_F/‖A‖_F, the fraction of modes flagged clustered, and `converged`.
Spectra: "separated" λ = linspace(2, 1, n) (gaps 1/(n−1)), "power law" λ_k = k⁻².
float64. On a GPU (`jax.devices()[0].platform == "gpu"`) n = 4096 is added.

On a loaded machine set `OPENBLAS_NUM_THREADS=1`: multithreaded LAPACK under oversubscription
made `eigh` 10–50× slower here, which would flatter the refinement.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from spectral_jax.modes.refine import eigh_refined_or_fallback, refine_eigenbasis  # noqa: E402

HIGHEST = jax.lax.Precision.HIGHEST


def _problem(rng, n, spectrum, delta):
    lam = np.linspace(2.0, 1.0, n) if spectrum == "separated" else np.arange(1.0, n + 1.0) ** -2
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    g = rng.standard_normal((n, n))
    e = (g + g.T) / 2 / np.sqrt(2 * n)  # semicircle: ‖E‖₂ ≈ 1
    a = (q * lam[None, :]) @ q.T + delta * e
    return jnp.asarray((a + a.T) / 2), jnp.asarray(q), jnp.asarray(e)


def _floor(a, mdot):
    _, vec = jnp.linalg.eigh(a)
    return jnp.matmul(vec.T, jnp.matmul(mdot, vec, precision=HIGHEST), precision=HIGHEST)


FUNCTIONS = {
    "gemm": jax.jit(lambda a, q, e: jnp.matmul(a, q, precision=HIGHEST)),
    "eigh": jax.jit(lambda a, q, e: jnp.linalg.eigh(a)),
    "floor": jax.jit(lambda a, q, e: _floor(a, e)),
    "refine1": jax.jit(lambda a, q, e: refine_eigenbasis(a, q, iterations=1)),
    "refine2": jax.jit(lambda a, q, e: refine_eigenbasis(a, q, iterations=2)),
    "fallback": jax.jit(lambda a, q, e: eigh_refined_or_fallback(a, q, iterations=2)),
}


def _time(args, repeats):
    outputs = {name: jax.block_until_ready(f(*args)) for name, f in FUNCTIONS.items()}  # warm-up
    times = {name: [] for name in FUNCTIONS}
    for _ in range(repeats):
        for name, f in FUNCTIONS.items():
            start = time.perf_counter()
            jax.block_until_ready(f(*args))
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}, outputs


def _accuracy(a, basis):
    exact = np.linalg.eigvalsh(np.asarray(a))[::-1]
    dlam = np.max(np.abs(np.asarray(basis.eigenvalues) - exact)) / np.max(np.abs(exact))
    return dlam, float(basis.residual), float(np.mean(np.asarray(basis.clustered_modes)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "refine.md"))
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    sizes = args.sizes or ([512, 1024, 4096] if device.platform == "gpu" else [512, 1024])
    rng = np.random.default_rng(0)
    header = (
        "| n | spectrum | δ | GEMM (ms) | eigh (ms) | floor (ms) | refine ×1 (ms) | refine ×2 (ms) "
        "| ×1 / eigh | ×2 / eigh | fallback (ms) | max abs Δλ / λmax ×1 / ×2 | residual ×1 / ×2 "
        "| clustered ×2 | converged ×1 / ×2 |"
    )
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    print(rows[0], rows[1], sep="\n", flush=True)
    for n in sizes:
        for spectrum in ("separated", "power law"):
            for delta in (1e-5, 1e-8):
                problem = _problem(rng, n, spectrum, delta)
                ms, out = _time(problem, args.repeats)
                d1, r1, _ = _accuracy(problem[0], out["refine1"])
                d2, r2, c2 = _accuracy(problem[0], out["refine2"])
                conv = f"{bool(out['refine1'].converged)} / {bool(out['refine2'].converged)}"
                fb = f"{ms['fallback']:.1f}" + ("" if bool(out["fallback"][2]) else " (eigh)")
                row = (
                    f"| {n} | {spectrum} | {delta:.0e} | {ms['gemm']:.1f} | {ms['eigh']:.1f} "
                    f"| {ms['floor']:.1f} "
                    f"| {ms['refine1']:.1f} | {ms['refine2']:.1f} "
                    f"| {ms['refine1'] / ms['eigh']:.2f} | {ms['refine2'] / ms['eigh']:.2f} "
                    f"| {fb} | {d1:.1e} / {d2:.1e} | {r1:.1e} / {r2:.1e} | {c2:.0%} | {conv} |"
                )
                rows.append(row)
                print(row, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = (
        f"{device.platform} ({device.device_kind}), {os.cpu_count()} CPU cores, "
        f"{platform.python_implementation()} {platform.python_version()}, jax {jax.__version__}, "
        f"float64, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
        f"median of {args.repeats} interleaved rounds, 1-min load average at the end {load:.1f}."
    )
    text = "# Ogita–Aishima refinement vs eigh\n\n`python benchmarks/bench_refine.py"
    text += f" --sizes {' '.join(map(str, sizes))} --repeats {args.repeats}`: {note}\n\n"
    text += "\n".join(rows) + "\n"
    pathlib.Path(args.out).write_text(text)
    print(f"\n{note}\nwritten to {args.out}")


if __name__ == "__main__":
    main()
