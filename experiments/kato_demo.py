"""Kato demonstration: the exact modewise ODE against the closed form and the direct solver.

A rotating power-law operator $M(t) = R(t)\\Lambda R(t)^T$, $R = \\exp(tA)$ with a banded random
generator: `solve_kato` gives the modal coefficients in the continuous frame, compared with the
closed form $c(t) = \\exp(-(\\Lambda + A)t)c(0)$ and with `solve_direct` ($\\Phi c$ vs $e$).
Figure: mode energies $|c_k(t)|^2$ against t.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from ._common import enable_float64, write_result

NAME = "kato_demo"


@dataclasses.dataclass(frozen=True)
class Config:
    n: int = 64
    spectral_exponent: float = 1.5  # λ_k = k^-α
    bandwidth: int = 3
    coupling: float = 0.05
    t_max: float = 50.0
    num_times: int = 101
    rtol: float = 1e-10
    atol: float = 1e-12
    seed: int = 0

    @classmethod
    def quick(cls) -> Config:
        return cls()

    @classmethod
    def full(cls) -> Config:
        return cls(n=128, t_max=100.0, num_times=201)


def run(config: Config, out_dir: pathlib.Path) -> dict:
    enable_float64()
    import jax
    import jax.numpy as jnp

    import spectral_jax as sj

    n = config.n
    lam = jnp.arange(1, n + 1, dtype=jnp.float64) ** -config.spectral_exponent
    a = jnp.asarray(sj.banded_generator(n, config.bandwidth, config.coupling, config.seed))
    op = sj.RotatingPowerLaw(lam, a)
    e0 = jnp.asarray(np.random.default_rng(config.seed + 1).normal(size=n))
    ts = jnp.linspace(0.0, config.t_max, config.num_times)

    start = time.perf_counter()
    kato = sj.solve_kato(op, e0, ts, rtol=config.rtol, atol=config.atol)
    kato_seconds = time.perf_counter() - start
    start = time.perf_counter()
    direct = sj.solve_direct(op, e0, ts, rtol=config.rtol, atol=config.atol)
    direct_seconds = time.perf_counter() - start

    # At t=0 the frame is R(0) = I with positive diagonal, so c(0) = e0.
    exact = jax.vmap(lambda t: op.exact_coefficients(t, e0))(ts)
    scale = jnp.linalg.norm(exact, axis=1)
    err_closed = float(jnp.max(jnp.linalg.norm(kato.coefficients - exact, axis=1) / scale))
    err_direct = float(
        jnp.max(
            jnp.linalg.norm(kato.residuals - direct.residuals, axis=1)
            / jnp.linalg.norm(direct.residuals, axis=1)
        )
    )
    err_generator = float(jnp.max(jnp.abs(kato.generator + a[None])))
    result = {
        "config": config,
        "max_relative_error_vs_closed_form": err_closed,
        "max_relative_error_vs_direct": err_direct,
        "max_abs_error_generator_vs_minus_A": err_generator,
        "kato_stats": kato.stats,
        "direct_stats": direct.stats,
        "kato_seconds_including_compile": kato_seconds,
        "direct_seconds_including_compile": direct_seconds,
        "final_loss": float(kato.loss[-1]),
    }
    figure_path = out_dir / f"{NAME}.png"
    _figure(np.asarray(ts), np.asarray(kato.energies), np.asarray(exact) ** 2, figure_path)
    write_result(out_dir, NAME, result)
    print(
        f"[{NAME}] n={n}: |Kato - closed form| = {err_closed:.2e}, |Kato - direct| = "
        f"{err_direct:.2e}, |W + A| = {err_generator:.2e}; {kato.stats['num_accepted_steps']} "
        f"steps, {kato.stats['rhs_evaluations']} RHS evaluations"
    )
    return result


def _figure(ts, energies, exact_energies, path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = energies.shape[1]
    modes = sorted({0, 1, 3, 7, 15, 31, n // 2, n - 1} & set(range(n)))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 1, len(modes)))
    for color, k in zip(colors, modes):
        ax.plot(ts, energies[:, k], color=color, lw=1.6, label=f"k={k + 1}")
        ax.plot(ts, exact_energies[:, k], color="k", lw=0.6, ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$|c_k(t)|^2$")
    ax.set_title("Kato modewise ODE (colour) vs closed form (dotted)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
