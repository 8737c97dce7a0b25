"""Double descent: the spectrum of M reaching zero at the interpolation threshold p = n.

Linear random features $z = Fx/\\sqrt{p}$ (width p) on n noisy samples of the power-law problem
of `resolution_limits`; $M = ZZ^T/n$. Gradient flow from zero gives, in M's eigenbasis
(docs/theory.md §2.7), the predictor
$a(t) = Z^T\\Phi\\,\\mathrm{diag}((1-e^{-\\lambda_k t})/(n\\lambda_k))\\,\\Phi^T y$:
the $t\\to\\infty$ (ridgeless) solution puts weight $\\propto 1/\\lambda_k$ on each mode, and
as $p \\to n$ the smallest $\\lambda_k \\to 0$, so the test error peaks at p = n.
Early stopping (the frontier has not reached the small-λ shells) or a ridge removes the peak.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax.numpy as jnp
import numpy as np

import spectral_jax as sj

from ._common import ExperimentConfig, publish
from ._figures import claim_title, new_figure, sci
from .resolution_limits import power_law_problem, test_loss

NAME = "double_descent"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    alpha: float = 1.5
    beta: float = 2.0
    dimension: int = 1024
    n: int = 100
    widths: tuple[int, ...] = (10, 20, 40, 60, 80, 90, 95, 100, 105, 110, 125, 150, 200, 400, 800)
    noise: float = 0.1
    early_stop_time: float = 100.0
    ridge: float = 1e-3
    seeds: int = 8
    seed: int = 0
    shell_count: int = 12  # shells of ratio 4 below λ_ref = 10, for the solution-weight panel

    def __post_init__(self):
        if self.n not in self.widths:
            raise ValueError(
                f"Config.widths must contain the interpolation threshold n={self.n}, "
                f"got {self.widths}"
            )

    @classmethod
    def full(cls) -> Config:
        return cls(dimension=4096, seeds=32)


def fit_random_features(z, y, time: float, ridge: float):
    """Gradient flow from zero to `time` (inf: converged) with an optional ridge, via eigh(M)."""
    n = z.shape[0]
    lam, phi = np.linalg.eigh(z @ z.T / n)
    lam = np.clip(lam, 0.0, None)
    rate = lam + ridge
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.isinf(time):
            gain = np.where(rate > 1e-12 * rate.max(), 1.0 / (n * rate), 0.0)
        else:
            # A zero mode fills linearly (limit t/n); Z^T maps it to zero anyway.
            gain = np.where(rate > 0, -np.expm1(-rate * time) / (n * rate), time / n)
    # Gradient flow on the ridge objective stays in Z's row space: a = Z^T b with
    # db/dt = -(M + γ) b + y/n, so mode k fills (1 - e^{-(λ_k+γ)t}) / (n(λ_k + γ)).
    return z.T @ (phi @ (gain * (phi.T @ y))), lam


def shell_weights(z, y, shells) -> np.ndarray:
    """Squared norm of the ridgeless solution carried by each spectral shell of M = ZZ^T/n.

    $\\|a\\|^2 = \\sum_k (\\phi_k^T y)^2/(n\\lambda_k)$ over the non-zero modes: the
    $1/\\lambda$ weight that blows up in the bottom shells as $p \\to n$.
    """
    n = z.shape[0]
    lam, phi = np.linalg.eigh(z @ z.T / n)
    live = lam > 1e-12 * lam.max()
    per_mode = np.where(live, (phi.T @ y) ** 2 / (n * np.where(live, lam, 1.0)), 0.0)
    member = np.asarray(shells.membership(jnp.asarray(np.where(live, lam, 0.0))))
    return per_mode @ member


def run(config: Config, out_dir: pathlib.Path) -> dict:
    lam_pop, theta = power_law_problem(config)
    rng = np.random.default_rng(config.seed)
    methods = {
        "ridgeless": (np.inf, 0.0),
        f"early stop t={config.early_stop_time:g}": (config.early_stop_time, 0.0),
        f"ridge {config.ridge:g}": (np.inf, config.ridge),
    }
    losses = {m: np.zeros((len(config.widths), config.seeds)) for m in methods}
    smallest = np.zeros((len(config.widths), config.seeds))
    norms = np.zeros((len(config.widths), config.seeds))
    shells = sj.LogShells(10.0, 4.0, config.shell_count)
    widths = np.asarray(config.widths)
    targets = (config.n / 2, config.n, 2 * config.n)
    shell_widths = {int(widths[np.argmin(np.abs(widths - w))]) for w in targets}
    weights = {}
    for s in range(config.seeds):
        x = rng.normal(size=(config.n, lam_pop.size)) * np.sqrt(lam_pop)[None, :]
        y = x @ theta + config.noise * rng.normal(size=config.n)
        for i, p in enumerate(config.widths):
            f = rng.normal(size=(p, lam_pop.size))
            z = x @ f.T / np.sqrt(p)
            for name, (time, ridge) in methods.items():
                a, lam = fit_random_features(z, y, time, ridge)
                losses[name][i, s] = test_loss(f.T @ a / np.sqrt(p), lam_pop, theta)
                if name == "ridgeless":
                    norms[i, s] = float(np.sum(a**2))
            smallest[i, s] = lam[lam > 1e-12 * lam.max()].min() if p < config.n else lam.min()
            if s == 0 and p in shell_widths:
                weights[p] = shell_weights(z, y, shells)
    peak = {m: int(config.widths[int(np.argmax(np.median(v, axis=1)))]) for m, v in losses.items()}
    at_n = config.widths.index(config.n)
    ridgeless = np.median(losses["ridgeless"], axis=1)
    result = {
        "config": config,
        "widths": config.widths,
        "test_loss_median": {m: np.median(v, axis=1) for m, v in losses.items()},
        "smallest_nonzero_eigenvalue_median": np.median(smallest, axis=1),
        "solution_norm_median": np.median(norms, axis=1),
        "peak_width": peak,
        "peak_over_far_ratio": float(ridgeless.max() / ridgeless[-1]),
        "ridgeless_loss_at_p_equals_n": float(ridgeless[at_n]),
        "shell_centers": np.asarray(shells.centers),
        "ridgeless_norm_by_shell": {str(p): w for p, w in sorted(weights.items())},
    }
    figure = _figure(config, losses, smallest, shells, weights, result)
    print(
        f"[{NAME}] n={config.n}: ridgeless test loss peaks at p={peak['ridgeless']} "
        f"({result['peak_over_far_ratio']:.1f}× the p={config.widths[-1]} value); peaks with "
        f"early stopping / ridge at p={list(peak.values())[1:]}"
    )
    return publish(out_dir, NAME, result, figure)


def _figure(config, losses, smallest, shells, weights, result):
    widths = np.asarray(config.widths)
    fig, axes = new_figure([["loss", "loss"], ["eig", "shell"]], panel=(5.5, 4.2))
    ax, bx, cx = axes["loss"], axes["eig"], axes["shell"]
    for i, (name, values) in enumerate(losses.items()):
        low, mid, high = np.percentile(values, [25, 50, 75], axis=1)
        ax.plot(widths, mid, marker="o", ms=3, color=f"C{i}", label=name)
        ax.fill_between(widths, low, high, color=f"C{i}", alpha=0.15, lw=0)
    ax.set_ylabel("test loss (median, quartiles)")
    ax.set_title(f"test loss against width, n = {config.n} samples")
    ax.legend(loc="upper right")
    low, mid, high = np.percentile(smallest, [25, 50, 75], axis=1)
    bx.plot(widths, mid, marker="o", ms=3)
    bx.fill_between(widths, low, high, color="C0", alpha=0.15, lw=0)
    bx.set_ylabel(r"smallest non-zero $\lambda_k$ of $M$")
    bx.set_title(r"the spectrum reaches zero at $p = n$")
    for axis in (ax, bx):
        axis.axvline(config.n, color="k", lw=0.8, ls=":")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(r"width $p$")
    centers = np.asarray(shells.centers)
    for p, w in sorted(weights.items()):
        cx.plot(centers, np.where(w > 0, w, np.nan), marker="o", ms=3, label=f"p = {p}")
    cx.set_xscale("log")
    cx.set_yscale("log")
    cx.set_xlabel(r"shell centre $\lambda_s$ of $M$")
    cx.set_ylabel(r"ridgeless $\|a\|^2$ in the shell")
    cx.set_title(r"weight $\propto 1/\lambda$ piles into the bottom shells")
    cx.legend(loc="upper right")
    early = np.median(losses[f"early stop t={config.early_stop_time:g}"], axis=1)
    at_n = config.widths.index(config.n)
    claim_title(
        fig,
        f"Ridgeless loss peaks at p = n = {config.n}, "
        f"{sci(result['peak_over_far_ratio'], 3)}× its p = {config.widths[-1]} value; "
        f"early stopping removes the peak",
        f"smallest eigenvalue of M at p = n: {sci(float(np.median(smallest[at_n])))}; "
        f"loss at p = n: ridgeless {sci(result['ridgeless_loss_at_p_equals_n'])}, "
        f"early stop t = {config.early_stop_time:g}: {sci(float(early[at_n]))}",
    )
    return fig
