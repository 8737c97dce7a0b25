"""Lazy vs rich: the output scale α switches spectral transport off (docs/theory.md §2.1, 1.5).

One tanh MLP (NTK parameterisation) on a power-law teacher is trained by exact gradient flow
(diffrax, float64) with $f_\\alpha = \\alpha(f_\\theta - f_{\\theta_0})$ for several α. For each
run: the kernel velocity $\\|\\dot M\\|_F/\\|M\\|_F$ (max over the run, and the path length
$\\int\\|\\dot M\\|dt/\\|M(0)\\|$), the relative kernel change, and the ratio of inter-shell
flux to dissipation $\\int\\sum_s|\\Pi_s|dt / \\int\\sum_s D_s dt$ from the Kato analysis of the
recorded run. Claim: all of them fall monotonically as α grows (θ moves O(1/α)), with slope
close to −1 in α (decay exponents near 1, fitted with their 95% intervals). Figure: the
table against α with the fits, and $\\|\\dot M\\|/\\|M\\|$ along each run.

A sweep (`Execution.EACH`: adaptive ODE solves, one run per call): one configuration is one α
with the network, data and seed; `report` builds the table, fits and figure from the records.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib

import numpy as np

from ..sweep import Execution, Record, Sweep
from ._common import publish
from ._figures import claim_title, draw_power_law, half_width, new_figure, power_label, sci

NAME = "lazy_rich"
_ALPHA = r"\alpha"
_LABELS = {
    "kernel_velocity_max": r"$\max\ \|\dot M\|/\|M\|$",
    "kernel_path_length": r"$\int\|\dot M\|\,dt\,/\,\|M_0\|$",
    "kernel_change": r"$\|M_T - M_0\|/\|M_0\|$",
    "flux_to_dissipation": r"$\int\sum|\Pi_s|\,/\int\sum D_s$",
}
_SCALARS = (*_LABELS, "final_loss", "final_test_loss", "kato_residual_error_max")
# θ moves O(1/α), so every measure of kernel motion falls as α^-1 (the module's claim).
PREDICTED_DECAY_EXPONENT = 1.0


@dataclasses.dataclass(frozen=True)
class Parameters:
    alpha: float = 1.0  # output scale of f_α = α(f_θ − f_θ0)
    n_train: int = 16
    n_test: int = 16
    dim: int = 4
    width: int = 32
    depth: int = 2
    t_max: float = 30.0
    num_times: int = 30
    input_exponent: float = 1.0
    target_exponent: float = 2.0
    shell_ratio: float = 2.0
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.alpha < math.inf:
            raise ValueError(f"alpha (output scale) must be positive and finite, got "
                             f"{self.alpha}")
        for name in ("n_train", "n_test", "dim", "width", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_train < 2:
            raise ValueError(f"n_train must be >= 2 (a kernel with a spectrum), got "
                             f"{self.n_train}")
        if not 0 < self.t_max < math.inf:
            raise ValueError(f"t_max must be positive and finite, got {self.t_max}")
        if self.num_times < 3:
            raise ValueError(f"num_times must be >= 3 (the Kato analysis needs 3 saved "
                             f"times), got {self.num_times}")
        if not self.input_exponent > 0 or not self.target_exponent > 0:
            raise ValueError(f"input_exponent and target_exponent must be > 0, got "
                             f"{self.input_exponent}, {self.target_exponent}")
        if not self.shell_ratio > 1:
            raise ValueError(f"shell_ratio must be > 1, got {self.shell_ratio}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


@functools.lru_cache(maxsize=4)
def _problem(n_train, n_test, dim, width, depth, input_exponent, target_exponent, seed):
    """Data, network and initial parameters (cached: the α of a sweep share one `apply_fn`,
    so its compiled gradient flow is reused)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import spectral_jax as sj
    from spectral_jax.networks import MLP

    data = sj.power_law_teacher(
        jax.random.key(seed), n_train, n_test, dim,
        input_exponent=input_exponent, target_exponent=target_exponent, dtype=jnp.float64,
    )
    model = MLP(dim, width, depth, rngs=nnx.Rngs(seed), param_dtype=jnp.float64)
    apply_fn, params = sj.from_nnx(model)
    return data, apply_fn, params


def compute(params) -> dict:
    """Train one α by gradient flow, analyse the run; the row's scalars and the kernel
    velocity along the run."""
    import jax.numpy as jnp

    import spectral_jax as sj
    from spectral_jax.networks import TrainingConfig

    p = Parameters(**params)
    data, apply_fn, init = _problem(p.n_train, p.n_test, p.dim, p.width, p.depth,
                                    p.input_exponent, p.target_exponent, p.seed)
    ts = sj.log_times(p.t_max, p.num_times, t_min=p.t_max * 1e-3)
    record = sj.gradient_flow(
        apply_fn, init, data.x_train, data.y_train, ts,
        config=TrainingConfig(output_scale=float(p.alpha)),
        x_test=data.x_test, y_test=data.y_test,
    )
    # Shells from this run's initial eigenvalues. M = K/n at θ0 does not depend on α (the
    # output scale enters the flow, not the kernel), so for one seed every α of a sweep gets
    # the same shells, as when they were built once for all runs.
    lam0 = np.asarray(record.eigenvalues[0])
    lam_ref = 1.5 * float(lam0[0])
    count = int(np.ceil(np.log(lam_ref / lam0[lam0 > 1e-12 * lam_ref].min()) / np.log(2)))
    shells = sj.LogShells(jnp.asarray(lam_ref), jnp.asarray(p.shell_ratio), count)
    an = sj.analyze_training(record, shells)
    velocity = np.asarray(record.kernel_velocity)
    speed = np.linalg.norm(np.asarray(record.kernel_derivatives), axis=(1, 2))
    path = float(np.trapezoid(speed, ts) / np.linalg.norm(np.asarray(record.kernels[0])))
    return {
        "ts": np.asarray(ts),
        "kernel_velocity": velocity,
        "kernel_velocity_max": velocity.max(),
        "kernel_path_length": np.asarray(path),
        "kernel_change": np.asarray(an.kernel_change),
        "flux_to_dissipation": np.asarray(an.flux_to_dissipation),
        "final_loss": np.asarray(record.loss[-1]),
        "final_test_loss": np.asarray(record.test_loss[-1]),
        "kato_residual_error_max": np.max(np.asarray(an.residual_error)),
    }


SWEEP = Sweep(
    name=NAME,
    parameters=Parameters,
    compute=compute,
    execution=Execution.EACH,
    description="kernel motion against the output scale alpha: lazy as alpha grows",
)


def _strictly_decreasing(values) -> bool:
    return bool(np.all(np.diff(np.asarray(values, dtype=np.float64)) < 0))


def report(records: list[Record], out_dir: pathlib.Path) -> dict:
    """Table against α, monotonicity, the decay exponent in α of each measure, figure.

    Failed records are listed under `failed` and left out; fits need 3 runs.
    """
    import spectral_jax as sj

    ok = sorted((r for r in records if r.ok), key=lambda r: r.config["alpha"])
    failed = [{"config": dict(r.config), "config_id": r.config_id, "error": r.error}
              for r in records if not r.ok]
    rows = [{"alpha": float(r.config["alpha"]),
             **{k: float(r.outputs[k]) for k in _SCALARS}} for r in ok]
    seconds = sum(r.meta.get("run_seconds") or 0.0 for r in records)
    alphas = np.array([r["alpha"] for r in rows])
    keys = tuple(_LABELS)
    monotone = {k: _strictly_decreasing([r[k] for r in rows]) for k in keys}
    fits = ({k: sj.fit_power_law(alphas, np.array([r[k] for r in rows])) for k in keys}
            if len(rows) >= 3 else {})
    result = {
        "configurations": [dict(r.config) for r in ok],
        "table": rows,
        "failed": failed,
        "monotone_decreasing": monotone,
        "all_monotone": bool(rows) and all(monotone.values()),
        # Each measure ∝ α^(-p): p with its 95% interval, and the log-log slope -p.
        "decay_exponent_in_alpha": {
            k: {"exponent": f.exponent, "ci95": [f.ci_low, f.ci_high]} for k, f in fits.items()
        },
        "power_law_slope_in_alpha": {k: -f.exponent for k, f in fits.items()},
        "exponents": [
            {"quantity": f"{k} ∝ alpha^-p", "measured": f.exponent, "ci_low": f.ci_low,
             "ci_high": f.ci_high, "predicted": PREDICTED_DECAY_EXPONENT}
            for k, f in fits.items()
        ],
        "seconds": seconds,
    }
    curves = [(r.outputs["ts"], r.outputs["kernel_velocity"]) for r in ok]
    figure = _figure(alphas, rows, curves, fits, result) if rows else None
    print(f"[{NAME}] alpha | max|dM|/|M| | path | change | flux/diss   ({seconds:.1f}s)")
    for r in rows:
        print(
            f"[{NAME}] {r['alpha']:6.2f} | {r['kernel_velocity_max']:.3e} | "
            f"{r['kernel_path_length']:.3e} | {r['kernel_change']:.3e} | "
            f"{r['flux_to_dissipation']:.3e}"
        )
    for f in failed:
        print(f"[{NAME}] FAILED alpha = {f['config']['alpha']:g}: {f['error']}")
    exponents = {k: f"{f.exponent:.2f} ± {half_width(f):.2f}" for k, f in fits.items()}
    print(f"[{NAME}] monotone: {monotone}; decay exponents in alpha: {exponents}")
    return publish(out_dir, NAME, result, figure)


def _figure(alphas, rows, curves, fits, result):
    from matplotlib.ticker import FixedLocator, NullLocator

    fig, (ax, bx) = new_figure(ncols=2, panel=(6.0, 4.5))
    for i, (key, label) in enumerate(_LABELS.items()):
        fit, color = fits.get(key), f"C{i}"
        fitted = "" if fit is None else f": {power_label(_ALPHA, fit)}"
        ax.loglog(alphas, [r[key] for r in rows], "o", color=color, label=f"{label}{fitted}")
        if fit is not None:
            draw_power_law(ax, fit, alphas, color=color)
    # One labelled tick per α: log-axis minor labels (2×10⁰, 3×10⁰, ...) collide.
    ax.xaxis.set_major_locator(FixedLocator(alphas))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_xlabel(r"output scale $\alpha$")
    ax.set_ylabel("kernel motion (relative)")
    ax.set_title(r"four measures of kernel motion against $\alpha$ (fit, 95% band)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)

    for i, (alpha, (ts, curve)) in enumerate(zip(alphas, curves)):
        bx.loglog(ts[1:], curve[1:], color=f"C{i}", label=rf"$\alpha = {alpha:g}$")
    bx.set_xlabel(r"$t$")
    bx.set_ylabel(r"$\|\dot M(t)\|_F\,/\,\|M(t)\|_F$")
    bx.set_title("kernel velocity along each run")
    bx.legend(loc="lower left")

    velocity = fits.get("kernel_velocity_max")
    monotone = sum(result["monotone_decreasing"].values())
    claim_title(
        fig,
        r"Larger $\alpha$ is lazier: the kernel velocity falls as "
        + (power_label(_ALPHA, velocity) if velocity is not None else "(no fit: < 3 runs)"),
        f"{monotone} of {len(_LABELS)} measures strictly decrease; "
        f"the Kato analysis reconstructs each run to "
        f"{sci(max(r['kato_residual_error_max'] for r in rows))}",
    )
    return fig
