"""Exactness of `solve_kato` where real spectra live, against independent references.

Each case is an adversarial spectrum (`spectral_jax.operators.adversarial`, dense power-law
tails through `RotatingPowerLaw`); the reference is `scipy.integrate.solve_ivp(DOP853)` at
rtol 1e-13 on de/dt = −M(t)e, or the closed form expm(tA) expm(−(Λ+A)t) c0 for the rotating
power law. Prints a markdown table: the largest relative error of Φc over the saved times, the
self-check's own mismatch, accepted steps and wall time (compile included).

    python scripts/bench_exactness.py            # all cases, a few minutes on 2 CPU cores
    python scripts/bench_exactness.py --quick    # the small cases only
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np


def _dop853(op, e0, ts):
    import jax.numpy as jnp
    import scipy.integrate

    sol = scipy.integrate.solve_ivp(
        lambda t, e: -np.asarray(op(jnp.asarray(t))) @ e,
        (ts[0], ts[-1]),
        e0,
        method="DOP853",
        t_eval=ts,
        rtol=1e-13,
        atol=1e-15,
    )
    return sol.y.T


def cases(quick: bool):
    import jax.numpy as jnp
    import scipy.linalg
    import scipy.stats

    import spectral_jax as sj
    from spectral_jax.operators import (
        AvoidedCrossings,
        BreathingRBF,
        LowRankFeatures,
        SplittingCluster,
    )

    rng = np.random.default_rng(0)
    u3 = jnp.asarray(scipy.stats.ortho_group.rvs(3, random_state=1))
    for g in (1e-4, 1e-8, 1e-12):
        op = AvoidedCrossings(u3, jnp.array([1.0]), jnp.array([g]), jnp.array([0.5]))
        e0, ts = np.array([1.0, 0.7, -0.4]), np.linspace(0.0, 2.0, 21)
        yield f"avoided crossing, n = 3, g = {g:g}", op, e0, ts, None, _dop853(op, e0, ts)
    u8 = jnp.asarray(scipy.stats.ortho_group.rvs(8, random_state=2))
    op = AvoidedCrossings(
        u8, jnp.array([0.7, 1.0]), jnp.array([1e-9, 1e-8]), jnp.array([0.9, 0.5, 0.2, 0.05])
    )
    e0, ts = rng.normal(size=8), np.linspace(0.0, 2.0, 21)
    yield "two avoided crossings, n = 8, g = 1e-9, 1e-8", op, e0, ts, None, _dop853(op, e0, ts)
    n, p = 40, 25
    op = LowRankFeatures(
        jnp.asarray(rng.normal(size=(n, p))), jnp.asarray(0.3 * rng.normal(size=(n, p)))
    )
    e0, ts = rng.normal(size=n), np.linspace(0.0, 3.0, 7)
    yield "exact zero modes, n = 40, rank 25", op, e0, ts, None, _dop853(op, e0, ts)
    base = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 0.3, 0.1])
    spread = np.array([0.0, 0.8, 0.3, -0.2, -0.6, 0.0, 0.0])
    a = np.asarray(sj.banded_generator(7, bandwidth=2, coupling=0.3, seed=4))
    op = SplittingCluster(jnp.asarray(a), jnp.asarray(base), jnp.asarray(spread))
    e0, ts = rng.normal(size=7), np.linspace(0.0, 2.0, 11)
    yield "4-fold cluster forms and splits, n = 7", op, e0, ts, None, _dop853(op, e0, ts)
    tails = [(48, 4.0, 1e-7)] if quick else [(48, 4.0, 1e-7), (200, 2.0, 1e-6), (200, 4.0, 1e-7)]
    for n, alpha, gap in tails:
        lam = np.arange(1, n + 1, dtype=np.float64) ** -alpha
        a = np.asarray(sj.banded_generator(n, bandwidth=2, coupling=0.1, seed=0))
        c0, ts = np.random.default_rng(0).normal(size=n), np.linspace(0.0, 2.0, 9)
        op = sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a))
        exact = np.stack(
            [scipy.linalg.expm(a * t) @ scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0 for t in ts]
        )
        yield (
            f"dense tail k^-{alpha:g}, n = {n}, cluster gap {gap:g}",
            op,
            c0,
            ts,
            sj.Clusters(relative_gap=gap),
            exact,
        )
    if not quick:
        points = jnp.asarray(np.random.default_rng(6).normal(size=(40, 2)))
        op = BreathingRBF(points)
        e0, ts = np.random.default_rng(7).normal(size=40), np.linspace(0.0, 30.0, 7)
        ref = _dop853(op, e0, ts)
        for gap in (1e-4, None):
            yield (
                f"breathing RBF kernel, n = 40, t ≤ 30, cluster gap {gap or 'default'}",
                op,
                e0,
                ts,
                sj.Clusters(relative_gap=gap),
                ref,
            )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)  # a script, not the library
    import jax.numpy as jnp

    import spectral_jax as sj

    print(
        "| case | max rel. error of Φc vs reference | self-check mismatch | accepted steps |"
        " wall (s) |"
    )
    print("|---|---|---|---|---|")
    for name, op, e0, ts, clusters, ref in cases(args.quick):
        start = time.perf_counter()
        sol = sj.solve_kato(
            op, jnp.asarray(e0), jnp.asarray(ts), rtol=1e-11, atol=1e-14, clusters=clusters
        )
        wall = time.perf_counter() - start
        err = np.max(
            np.linalg.norm(np.asarray(sol.residuals) - ref, axis=1) / np.linalg.norm(ref, axis=1)
        )
        print(
            f"| {name} | {err:.1e} | {float(np.max(sol.self_check_mismatch)):.1e} "
            f"| {sol.stats['num_accepted_steps']} | {wall:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
