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
import pathlib

import numpy as np

from ._common import ExperimentConfig, publish
from ._figures import claim_title, draw_power_law, new_figure, power_label

NAME = "resolution_limits"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    alpha: float = 1.5
    beta: float = 2.0
    dimension: int = 4096  # D ≫ max(n, p): the population spectrum's resolution
    sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    seeds: int = 4
    seed: int = 0

    def __post_init__(self):
        if len(self.sizes) < 3 or max(self.sizes) >= self.dimension:
            raise ValueError(
                f"Config.sizes must hold at least 3 sizes below dimension={self.dimension} "
                f"(a power-law fit needs 3 points), got {self.sizes}"
            )

    @classmethod
    def full(cls) -> Config:
        return cls(dimension=16384, sizes=(32, 64, 128, 256, 512, 1024, 2048), seeds=8)


def power_law_problem(config: Config):
    k = np.arange(1, config.dimension + 1, dtype=np.float64)
    lam = k**-config.alpha
    theta = np.sqrt(k**-config.beta / lam)
    return lam, theta


def test_loss(w, lam, theta) -> float:
    return float(np.sum(lam * (w - theta) ** 2))


def data_limited_loss(n: int, lam, theta, rng) -> float:
    """Min-norm interpolant (gradient flow from zero to t → ∞) on n samples."""
    x = rng.normal(size=(n, lam.size)) * np.sqrt(lam)[None, :]
    y = x @ theta
    w = x.T @ np.linalg.solve(x @ x.T, y)
    return test_loss(w, lam, theta)


def width_limited_loss(p: int, lam, theta, rng) -> float:
    """Linear random features of width p fitted on the population (infinite data)."""
    f = rng.normal(size=(p, lam.size))
    cov = (f * lam[None, :]) @ f.T  # F Σ F^T
    a = np.linalg.solve(cov, f @ (lam * theta))
    return test_loss(f.T @ a, lam, theta)


def run(config: Config, out_dir: pathlib.Path) -> dict:
    import spectral_jax as sj

    lam, theta = power_law_problem(config)
    energy = lam * theta**2
    sizes = np.asarray(config.sizes, dtype=np.float64)
    rng = np.random.default_rng(config.seed)
    data = np.array(
        [[data_limited_loss(int(n), lam, theta, rng) for _ in range(config.seeds)] for n in sizes]
    )
    width = np.array(
        [[width_limited_loss(int(p), lam, theta, rng) for _ in range(config.seeds)] for p in sizes]
    )
    # The shell picture: everything below the frontier at rank r is unresolved.
    tail = np.array([energy[int(r):].sum() for r in sizes])

    fits = {
        "data_size": sj.fit_power_law(sizes, data.mean(axis=1)),
        "width": sj.fit_power_law(sizes, width.mean(axis=1)),
        "shell_tail": sj.fit_power_law(sizes, tail),
    }
    formula = {
        "data_size": min(config.beta - 1, 2 * config.alpha),
        "width": config.beta - 1,
        "shell_tail": config.beta - 1,
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
        "config": config,
        "sizes": sizes,
        "data_limited_test_loss": data,
        "width_limited_test_loss": width,
        "shell_tail_energy": tail,
        "exponents": table,
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
