"""Kato demonstration: the exact modewise ODE against the closed form and the direct solver.

A rotating power-law operator $M(t) = R(t)\\Lambda R(t)^T$, $R = \\exp(tA)$ with a banded random
generator: `solve_kato` gives the modal coefficients in the continuous frame, compared with the
closed form $c(t) = \\exp(-(\\Lambda + A)t)c(0)$ and with `solve_direct` ($\\Phi c$ vs $e$).
Figure: mode energies $|c_k(t)|^2$ (closed form as lines, Kato as markers) and the relative
errors against t.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import numpy as np

from ._common import ExperimentConfig, enable_float64, publish
from ._figures import claim_title, new_figure, sci

NAME = "kato_demo"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
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
    err_closed_t = jnp.linalg.norm(kato.coefficients - exact, axis=1) / scale
    err_direct_t = jnp.linalg.norm(kato.residuals - direct.residuals, axis=1) / jnp.linalg.norm(
        direct.residuals, axis=1
    )
    err_closed, err_direct = float(jnp.max(err_closed_t)), float(jnp.max(err_direct_t))
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
    figure = _figure(
        config, np.asarray(ts), np.asarray(kato.energies), np.asarray(exact) ** 2,
        np.asarray(err_closed_t), np.asarray(err_direct_t), result,
    )
    print(
        f"[{NAME}] n={n}: |Kato - closed form| = {err_closed:.2e}, |Kato - direct| = "
        f"{err_direct:.2e}, |W + A| = {err_generator:.2e}; {kato.stats['num_accepted_steps']} "
        f"steps, {kato.stats['rhs_evaluations']} RHS evaluations"
    )
    return publish(out_dir, NAME, result, figure)


def _figure(config, ts, energies, exact_energies, err_closed, err_direct, result):
    n = energies.shape[1]
    fig, (ax, bx) = new_figure(ncols=2, panel=(6.0, 4.5))
    modes = sorted({0, 1, 7, n // 2 - 1, n - 1} & set(range(n)))
    colors = ["C0", "C1", "C2", "C3", "C4"]
    every = max(1, len(ts) // 25)  # markers sparse enough to see the line through them
    for color, k in zip(colors, modes):
        ax.plot(ts, exact_energies[:, k], color=color, lw=1.2, label=rf"$k={k + 1}$")
        ax.plot(ts[::every], energies[::every, k], ls="", marker="o", ms=4, mfc="none",
                mec=color)
    ax.plot([], [], "k-", lw=1.2, label="closed form")
    ax.plot([], [], "ko", ms=4, mfc="none", label="Kato ODE")
    ax.set_yscale("log")
    ax.set_xlabel(r"$t$")
    ax.set_ylabel(r"mode energy $|c_k(t)|^2$")
    ax.set_title(r"$c(t) = e^{-(\Lambda + A)t}c(0)$ (lines) vs Kato (markers)")
    ax.legend(ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))

    def positive(err):  # the exact zero at t = 0 has no place on a log axis
        return np.where(err > 0, err, np.nan)

    bx.plot(ts, positive(err_closed), label=r"vs closed form, $\|c - c_*\|/\|c_*\|$")
    bx.plot(ts, positive(err_direct), ls="--", label=r"vs direct solver, $\|\Phi c - e\|/\|e\|$")
    bx.axhline(config.rtol, color="gray", lw=0.8, ls=":", label=f"solver rtol = {config.rtol:g}")
    bx.set_yscale("log")
    bx.set_xlabel(r"$t$")
    bx.set_ylabel("relative error")
    bx.set_title("relative error of the Kato solution")
    bx.legend(loc="lower right")
    claim_title(
        fig,
        f"Kato matches the closed form to {sci(result['max_relative_error_vs_closed_form'])} "
        f"and the direct solver to {sci(result['max_relative_error_vs_direct'])}",
        rf"rotating power law $\lambda_k = k^{{-{config.spectral_exponent:g}}}$, "
        rf"$n = {n}$, $t \leq {config.t_max:g}$"
        f"; generator: max |W + A| = {sci(result['max_abs_error_generator_vs_minus_A'])}",
    )
    return fig
