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

import jax
import jax.numpy as jnp
import numpy as np

from ..sweep import Execution, Record, Sweep, build_parameters
from ._common import publish
from ._figures import claim_title, new_figure, sci
from .resolution_limits import power_law_problem, test_loss

NAME = "double_descent"
_METHODS = ("ridgeless", "early_stop", "ridge")


@dataclasses.dataclass(frozen=True)
class Parameters:
    width: int = 100  # p
    max_width: int = 800  # features are drawn at this width and masked (one shape for all)
    n: int = 100  # samples; the interpolation threshold is p = n
    alpha: float = 1.5
    beta: float = 2.0
    dimension: int = 1024
    noise: float = 0.1
    early_stop_time: float = 100.0
    ridge: float = 1e-3
    seed: int = 0
    shell_count: int = 12  # shells of ratio 4 below λ_ref = 10, for the solution weights

    def __post_init__(self):
        if not 1 <= self.width <= self.max_width:
            raise ValueError(f"width must lie in [1, max_width={self.max_width}], got "
                             f"{self.width}")
        if not 1 <= self.max_width < self.dimension or not 1 <= self.n < self.dimension:
            raise ValueError(f"max_width and n must lie in [1, dimension={self.dimension}), "
                             f"got {self.max_width}, {self.n}")
        if self.noise < 0 or self.ridge <= 0 or self.early_stop_time <= 0:
            raise ValueError("need noise >= 0, ridge > 0 and early_stop_time > 0")
        if self.shell_count < 1:
            raise ValueError(f"shell_count must be >= 1, got {self.shell_count}")


def fit_random_features(z, y, time, ridge):
    """Gradient flow from zero to `time` (inf: converged) with an optional ridge, via eigh(M).

    Traceable in `time` and `ridge` (jnp; `time` may be inf). **Returns:** (a, eigenvalues)."""
    lam, phi = jnp.linalg.eigh(z @ z.T / z.shape[0])
    return _fit_in_eigenbasis(z, y, lam, phi, time, ridge), jnp.clip(lam, 0.0, None)


def _fit_in_eigenbasis(z, y, lam, phi, time, ridge):
    n = z.shape[0]
    rate = jnp.clip(lam, 0.0, None) + ridge
    live = rate > 1e-12 * rate.max()
    converged = jnp.where(live, 1.0 / (n * jnp.where(live, rate, 1.0)), 0.0)
    # A zero mode fills linearly (limit t/n); Z^T maps it to zero anyway.
    finite = jnp.where(jnp.isinf(time), 0.0, time)
    positive = rate > 0
    flowing = jnp.where(positive, -jnp.expm1(-rate * finite) / (n * jnp.where(positive, rate, 1.0)),
                        finite / n)
    gain = jnp.where(jnp.isinf(time), converged, flowing)
    # Gradient flow on the ridge objective stays in Z's row space: a = Z^T b with
    # db/dt = -(M + γ) b + y/n, so mode k fills (1 - e^{-(λ_k+γ)t}) / (n(λ_k + γ)).
    return z.T @ (phi @ (gain * (phi.T @ y)))


def shell_weights(lam, phi, y, shells):
    """Squared norm of the ridgeless solution carried by each spectral shell of M = ZZ^T/n
    (from M's eigenpairs).

    $\\|a\\|^2 = \\sum_k (\\phi_k^T y)^2/(n\\lambda_k)$ over the non-zero modes: the
    $1/\\lambda$ weight that blows up in the bottom shells as $p \\to n$.
    """
    n = y.shape[0]
    live = lam > 1e-12 * lam.max()
    per_mode = jnp.where(live, (phi.T @ y) ** 2 / (n * jnp.where(live, lam, 1.0)), 0.0)
    return per_mode @ shells.membership(jnp.where(live, lam, 0.0))


def compute(params) -> dict:
    """Test losses of the three fits at one width, one seed (vmappable over the width, the
    floats and the seed). The features are drawn at `max_width` and the rows beyond `width`
    masked to zero, so every width shares one array shape and one compilation; zero features
    change neither M = ZZ^T/n nor the predictor. The data of a seed are the same at every
    width, as in a width sweep."""
    from ..shells import LogShells

    lam_pop, theta = power_law_problem(params["alpha"], params["beta"], params["dimension"])
    data_key, noise_key, feature_key = jax.random.split(jax.random.key(params["seed"]), 3)
    n, p = params["n"], params["width"]
    x = jax.random.normal(data_key, (n, lam_pop.size), lam_pop.dtype) * jnp.sqrt(lam_pop)[None, :]
    y = x @ theta + params["noise"] * jax.random.normal(noise_key, (n,), lam_pop.dtype)
    rows = jnp.arange(params["max_width"]) < p
    f = jax.random.normal(jax.random.fold_in(feature_key, p),
                          (params["max_width"], lam_pop.size), lam_pop.dtype)
    f = jnp.where(rows[:, None], f, 0.0) / jnp.sqrt(p)
    z = x @ f.T
    lam, phi = jnp.linalg.eigh(z @ z.T / n)
    settings = {"ridgeless": (jnp.inf, 0.0), "early_stop": (params["early_stop_time"], 0.0),
                "ridge": (jnp.inf, params["ridge"])}
    out = {}
    for name, (time, ridge) in settings.items():
        a = _fit_in_eigenbasis(z, y, lam, phi, time, ridge)
        out[f"test_loss_{name}"] = test_loss(f.T @ a, lam_pop, theta)
        if name == "ridgeless":
            out["solution_norm"] = jnp.sum(a**2)
    lam = jnp.clip(lam, 0.0, None)
    nonzero = jnp.where(lam > 1e-12 * lam.max(), lam, jnp.inf).min()
    out["smallest_eigenvalue"] = jnp.where(p < n, nonzero, lam.min())
    out["shell_weights"] = shell_weights(lam, phi, y, LogShells(10.0, 4.0, params["shell_count"]))
    return out


SWEEP = Sweep(
    name=NAME, parameters=Parameters, compute=compute,
    batched=("width", "alpha", "beta", "noise", "early_stop_time", "ridge", "seed"),
    execution=Execution.VMAP,
    description="test loss against width p at fixed n: the peak at p = n",
)


def report(records: list[Record], out_dir: pathlib.Path) -> dict:
    import spectral_jax as sj

    ok = [r for r in records if r.ok]
    first = build_parameters(Parameters, ok[0].config)
    widths = sorted({r.config["width"] for r in ok})
    if first.n not in widths:
        raise ValueError(f"double_descent.report: widths {widths} must contain n = {first.n}")
    seeds = sorted({r.config["seed"] for r in ok})

    def grid(output):
        table = {(r.config["width"], r.config["seed"]): r.outputs[output] for r in ok}
        return np.array([[table[(w, s)] for s in seeds] for w in widths])

    labels = {"ridgeless": "ridgeless", "early_stop": f"early stop t={first.early_stop_time:g}",
              "ridge": f"ridge {first.ridge:g}"}
    losses = {labels[m]: grid(f"test_loss_{m}") for m in _METHODS}
    smallest, norms = grid("smallest_eigenvalue"), grid("solution_norm")
    shells = sj.LogShells(10.0, 4.0, first.shell_count)
    targets = (first.n / 2, first.n, 2 * first.n)
    shown = {int(widths[int(np.argmin(np.abs(np.asarray(widths) - t)))]) for t in targets}
    weights = {p: grid("shell_weights")[widths.index(p), 0] for p in sorted(shown)}
    peak = {m: int(widths[int(np.argmax(np.median(v, axis=1)))]) for m, v in losses.items()}
    at_n = widths.index(first.n)
    ridgeless = np.median(losses["ridgeless"], axis=1)
    result = {
        "parameters": dataclasses.asdict(first) | {"widths": widths, "seeds": len(seeds)},
        "widths": widths,
        "test_loss_median": {m: np.median(v, axis=1) for m, v in losses.items()},
        "smallest_nonzero_eigenvalue_median": np.median(smallest, axis=1),
        "solution_norm_median": np.median(norms, axis=1),
        "peak_width": peak,
        "peak_over_far_ratio": float(ridgeless.max() / ridgeless[-1]),
        "ridgeless_loss_at_p_equals_n": float(ridgeless[at_n]),
        "shell_centers": np.asarray(shells.centers),
        "ridgeless_norm_by_shell": {str(p): w for p, w in sorted(weights.items())},
        "failed": [{"config": r.config, "error": r.error} for r in records if not r.ok],
        "exponents": [],  # a location (the peak at p = n), not an exponent
    }
    figure = _figure(first, widths, losses, smallest, shells, weights, result)
    print(
        f"[{NAME}] n={first.n}: ridgeless test loss peaks at p={peak['ridgeless']} "
        f"({result['peak_over_far_ratio']:.1f}× the p={widths[-1]} value); peaks with "
        f"early stopping / ridge at p={list(peak.values())[1:]}"
    )
    return publish(out_dir, NAME, result, figure)


def _figure(config, widths, losses, smallest, shells, weights, result):
    widths = np.asarray(widths)
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
    at_n = list(widths).index(config.n)
    claim_title(
        fig,
        f"Ridgeless loss peaks at p = n = {config.n}, "
        f"{sci(result['peak_over_far_ratio'], 3)}× its p = {widths[-1]} value; "
        f"early stopping removes the peak",
        f"smallest eigenvalue of M at p = n: {sci(float(np.median(smallest[at_n])))}; "
        f"loss at p = n: ridgeless {sci(result['ridgeless_loss_at_p_equals_n'])}, "
        f"early stop t = {config.early_stop_time:g}: {sci(float(early[at_n]))}",
    )
    return fig
