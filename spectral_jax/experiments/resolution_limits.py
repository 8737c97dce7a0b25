"""Resolution limits: loss against data size n and width p (docs/theory.md §2.6).

Microscopic model: linear regression in a power-law feature space, which is kernel gradient
flow with a kernel of spectrum $\\lambda_k = k^{-\\alpha}$ and a target with energy
$\\varepsilon_k = k^{-\\beta}$ per population mode ($x \\sim N(0, \\mathrm{diag}(\\lambda))$ in D
dimensions, $y = \\theta_*\\cdot x$, $\\theta_{*k}^2\\lambda_k = k^{-\\beta}$). Test loss is exact:
for a linear predictor $w$, $E[(w\\cdot x - y)^2] = \\sum_k \\lambda_k (w_k - \\theta_{*k})^2$.

- Data-limited: gradient flow on n samples run to $t\\to\\infty$ (the min-norm interpolant).
- Width-limited: linear random features $z = Fx/\\sqrt{p}$, trained on the population
  (infinite data), so only the width p limits resolution.
Exponents are decay exponents p of loss $\\propto r^{-p}$ (r = n or p), positive for a falling
loss. Three predictions per exponent: the formula ($\\beta - 1$; for kernel regression in n
$\\min(\\beta - 1, 2\\alpha)$), the shell picture (energy left in shells beyond the frontier
$u_\\max = \\alpha\\ln r$, i.e. $\\sum_{k>r} k^{-\\beta}$, fitted), and the microscopic measurement.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from ..sweep import Execution, Record, Sweep, build_parameters
from ._common import publish
from ._figures import claim_title, draw_power_law, new_figure, power_label

NAME = "resolution_limits"


class Resolution(enum.StrEnum):
    """Which resolution limits the loss: the data size n (p = ∞) or the width p (n = ∞)."""

    DATA_SIZE = "data_size"
    WIDTH = "width"


@dataclasses.dataclass(frozen=True)
class Parameters:
    resolution: Resolution = Resolution.DATA_SIZE
    size: int = 64  # n or p
    alpha: float = 1.5
    beta: float = 2.0
    dimension: int = 4096  # D ≫ size: the population spectrum's resolution
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "resolution", Resolution(self.resolution))
        if not 1 <= self.size < self.dimension:
            raise ValueError(f"size must lie in [1, dimension={self.dimension}), got {self.size}")
        if not self.alpha > 0 or not self.beta > 1:
            raise ValueError(f"need alpha > 0 and beta > 1, got {self.alpha}, {self.beta}")


def power_law_problem(alpha, beta, dimension: int):
    """Population spectrum λ_k = k^-α and teacher θ with θ_k²λ_k = k^-β (jnp: α, β traceable)."""
    k = jnp.arange(1, dimension + 1, dtype=float)
    lam = k**-alpha
    return lam, jnp.sqrt(k**-beta / lam)


def test_loss(w, lam, theta):
    return jnp.sum(lam * (w - theta) ** 2)


def compute(params) -> dict:
    """Test loss of the min-norm interpolant on n samples, or of width-p random features fitted
    on the population (vmappable over alpha, beta, seed)."""
    lam, theta = power_law_problem(params["alpha"], params["beta"], params["dimension"])
    key = jax.random.key(params["seed"])
    r = params["size"]
    if params["resolution"] == Resolution.DATA_SIZE:
        # Gradient flow from zero to t → ∞ on r samples: the min-norm interpolant.
        x = jax.random.normal(key, (r, lam.size), lam.dtype) * jnp.sqrt(lam)[None, :]
        w = x.T @ jnp.linalg.solve(x @ x.T, x @ theta)
    else:
        f = jax.random.normal(key, (r, lam.size), lam.dtype)
        cov = (f * lam[None, :]) @ f.T  # F Σ F^T
        w = f.T @ jnp.linalg.solve(cov, f @ (lam * theta))
    return {"test_loss": test_loss(w, lam, theta)}


SWEEP = Sweep(
    name=NAME, parameters=Parameters, compute=compute, batched=("alpha", "beta", "seed"),
    execution=Execution.VMAP,
    description="loss against data size n and width p: exponent beta - 1",
)


def _losses(records: list[Record], resolution: Resolution):
    chosen = [r for r in records if r.ok and r.config["resolution"] == resolution]
    sizes = sorted({r.config["size"] for r in chosen})
    per_size = [[float(r.outputs["test_loss"]) for r in chosen if r.config["size"] == s]
                for s in sizes]
    seeds = min(len(v) for v in per_size) if per_size else 0
    return np.asarray(sizes, dtype=np.float64), np.array([v[:seeds] for v in per_size])


def report(records: list[Record], out_dir: pathlib.Path) -> dict:
    import spectral_jax as sj

    first = build_parameters(Parameters, records[0].config)
    if {(r.config["alpha"], r.config["beta"], r.config["dimension"]) for r in records} != {
        (first.alpha, first.beta, first.dimension)
    }:
        raise ValueError("resolution_limits.report: one (alpha, beta, dimension) per report")
    sizes, data = _losses(records, Resolution.DATA_SIZE)
    width_sizes, width = _losses(records, Resolution.WIDTH)
    if not np.array_equal(sizes, width_sizes) or len(sizes) < 3:
        raise ValueError("resolution_limits.report: needs the same >= 3 sizes for n and p")
    # The shell picture: everything below the frontier at rank r is unresolved.
    k = np.arange(1, first.dimension + 1, dtype=np.float64)
    energy = k**-first.beta
    tail = np.array([energy[int(r):].sum() for r in sizes])
    fits = {
        "data_size": sj.fit_power_law(sizes, data.mean(axis=1)),
        "width": sj.fit_power_law(sizes, width.mean(axis=1)),
        "shell_tail": sj.fit_power_law(sizes, tail),
    }
    formula = {
        "data_size": min(first.beta - 1, 2 * first.alpha),
        "width": first.beta - 1,
        "shell_tail": first.beta - 1,
    }
    table = [
        {
            "axis": axis,
            "formula": formula[axis],
            "shell_tail_fit": fits["shell_tail"].exponent,
            "measured": fits[axis].exponent,
            "measured_ci95": [fits[axis].ci_low, fits[axis].ci_high],
        }
        for axis in ("data_size", "width")
    ]
    result = {
        "parameters": dataclasses.asdict(first) | {"sizes": sizes, "seeds": data.shape[1]},
        "sizes": sizes,
        "data_limited_test_loss": data,
        "width_limited_test_loss": width,
        "shell_tail_energy": tail,
        "failed": [{"config": r.config, "error": r.error} for r in records if not r.ok],
        "table": table,
        "exponents": [
            {"quantity": f"test loss ∝ {'n' if row['axis'] == 'data_size' else 'p'}^-p "
                         f"(α={first.alpha:g}, β={first.beta:g})",
             "measured": row["measured"], "ci_low": row["measured_ci95"][0],
             "ci_high": row["measured_ci95"][1], "predicted": row["formula"]}
            for row in table
        ],
    }
    figure = _figure(sizes, data, width, tail, fits, formula)
    for row in table:
        print(
            f"[{NAME}] loss ∝ {row['axis']}^-p: formula p = {row['formula']:.3f}, shell tail "
            f"{row['shell_tail_fit']:.3f}, measured {row['measured']:.3f} "
            f"[{row['measured_ci95'][0]:.3f}, {row['measured_ci95'][1]:.3f}]"
        )
    return publish(out_dir, NAME, result, figure)


def _figure(sizes, data, width, tail, fits, formula):
    from matplotlib.ticker import FixedLocator, NullLocator

    fig, ax = new_figure()
    series = (
        ("data_size", data, r"data size $n$ ($p = \infty$)", "o", "C0"),
        ("width", width, r"width $p$ ($n = \infty$)", "s", "C1"),
    )
    for key, values, label, marker, color in series:
        fit = fits[key]
        ax.errorbar(
            sizes, values.mean(1), yerr=values.std(1), marker=marker, ls="", color=color,
            label=f"{label}: fit {power_label('r', fit)}",
        )
        draw_power_law(ax, fit, sizes, color=color)
    tail_label = rf"$r^{{-{fits['shell_tail'].exponent:.2f}}}$"
    tail_sum = r"$\sum_{k>r} k^{-\beta}$"
    ax.plot(sizes, tail, "k--", lw=1, label=f"shell tail {tail_sum}: {tail_label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    # One labelled tick per size: log-axis minor labels (3×10¹, 4×10¹, ...) collide.
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_xlabel(r"resolution $r$ ($n$ or $p$)")
    ax.set_ylabel("test loss (mean ± sd over seeds)")
    ax.legend(loc="lower left")
    n_fit, p_fit = fits["data_size"], fits["width"]
    same = formula["data_size"] == formula["width"]
    predicted = (
        f"both predicted {formula['width']:g}" if same
        else f"predicted {formula['data_size']:g} and {formula['width']:g}"
    )
    claim_title(
        fig,
        rf"Loss $\propto$ {power_label('n', n_fit)} and {power_label('p', p_fit)}: {predicted}",
        r"the energy left beyond the frontier at rank $r$ (the shell tail) sets both",
    )
    return fig
