"""Lazy scaling: the renormalized shell model's loss exponent across the (α, β) plane.

One configuration integrates the shell ODE (`solve_shells`, Kvaerno5) from the continuum
power-law initial condition of a spectrum $\\lambda \\propto k^{-\\alpha}$ and a target of
energy $k^{-\\beta}$ per mode, with no transport (`transport = 0`, the lazy limit) or with the
drift closure $v_0(\\lambda/\\lambda_\\text{ref})^{a}(t/t_\\text{ref})^{b}$. The loss
exponent, fitted on the plateau of its local slope, is compared with the formula
$p = \\sigma\\max(1, (1+b)/a)$, $\\sigma = (\\beta-1)/\\alpha$ (lazy: $p = \\sigma$).

This is the sweep engine's showcase (`Execution.VMAP`): every configuration of one shell
count runs in one compiled, sharded call; `benchmarks/bench_sweep.py` times 64 of them against
a Python loop.
"""

from __future__ import annotations

import dataclasses
import pathlib

import diffrax
import jax.numpy as jnp
import numpy as np

from ..sweep import Execution, Record, Sweep, build_parameters
from ._common import publish
from ._figures import claim_title, new_figure

NAME = "lazy_scaling"


@dataclasses.dataclass(frozen=True)
class Parameters:
    spectral_exponent: float = 1.5  # α: λ_k ∝ k^-α
    target_exponent: float = 2.0  # β: target energy k^-β per mode
    transport: float = 0.0  # v0 of the drift closure; 0 is the lazy limit
    space_exponent: float = 0.5  # a
    time_exponent: float = 0.0  # b
    shell_ratio: float = 2.0
    t_max: float = 1e4
    fit_from: float = 10.0  # earliest time the exponent fit may use
    num_times: int = 41
    rtol: float = 1e-8

    def __post_init__(self):
        if not self.spectral_exponent > 0:
            raise ValueError(f"spectral_exponent must be > 0, got {self.spectral_exponent}")
        if not self.target_exponent > 1:
            raise ValueError(f"target_exponent must be > 1 (finite target energy), got "
                             f"{self.target_exponent}")
        if self.transport < 0:
            raise ValueError(f"transport (v0) must be >= 0, got {self.transport}")
        if self.transport > 0 and not (self.space_exponent > 0 and self.time_exponent > -1):
            raise ValueError("the drift closure needs space_exponent > 0 and time_exponent > -1")
        if not self.shell_ratio > 1:
            raise ValueError(f"shell_ratio must be > 1, got {self.shell_ratio}")
        if not self.t_max > 10 * self.fit_from > 0:
            raise ValueError(f"need t_max > 10 * fit_from > 0 (a decade to fit), got "
                             f"t_max={self.t_max}, fit_from={self.fit_from}")
        if self.num_times < 8:
            raise ValueError(f"num_times must be >= 8, got {self.num_times}")
        if not 0 < self.rtol < 1:
            raise ValueError(f"rtol must lie in (0, 1), got {self.rtol}")

    def predicted_exponent(self) -> float:
        from ..renorm import predicted_exponent

        a = self.space_exponent if self.transport > 0 else None
        return predicted_exponent(self.spectral_exponent, self.target_exponent,
                                  space_exponent=a, time_exponent=self.time_exponent)


def _shell_count(ratio: float, t_max: float) -> int:
    # Deep enough for any front with (1 + b)/a <= 4 (as `shell_ode_exponent`).
    return int(np.ceil(4 * np.log(10 * t_max) / np.log(ratio)))


def compute(params) -> dict:
    """Loss curve of one configuration (vmappable over the float fields)."""
    from .._jacobian import JacobianStructure
    from .._solvers import implicit_solver
    from ..renorm import ClosureKind, closure, solve_shells
    from ..shells import LogShells

    ratio, t_max = params["shell_ratio"], params["t_max"]
    count = _shell_count(ratio, t_max)
    shells = LogShells(1.0, ratio, count)
    sig = (params["target_exponent"] - 1.0) / params["spectral_exponent"]
    # Continuum shell energies of the density e^{-σu}, u = ln(λ_ref/λ), one ratio above λ_ref
    # down to λ = 0 (as `continuum_shell_energies`, written in jnp so that σ may be traced).
    du = np.log(ratio)
    edges = np.concatenate([[-du], du * np.arange(count + 1)])
    cdf = -jnp.exp(-sig * jnp.asarray(edges)) / sig
    energy0 = jnp.diff(jnp.concatenate([cdf, jnp.zeros(1)]))
    flux = closure(ClosureKind.DRIFT, v0=params["transport"],
                   space_exponent=params["space_exponent"],
                   time_exponent=params["time_exponent"], dtype=energy0.dtype)
    ts = np.geomspace(min(1e-2, params["fit_from"] / 10), t_max, params["num_times"])
    # Each face flux reads only its two adjacent shells: the Jacobian is tridiagonal, so the
    # implicit steps take 3 Jacobian-vector products and a tridiagonal solve, not a dense LU.
    sol = solve_shells(flux, shells, energy0, jnp.asarray(ts, energy0.dtype),
                       rtol=params["rtol"], atol=1e-16 * jnp.sum(energy0), throw=False,
                       solver=implicit_solver(JacobianStructure.TRIDIAGONAL))
    return {"ts": sol.ts, "loss": sol.total, "steps": sol.stats["num_steps"],
            "succeeded": sol.result == diffrax.RESULTS.successful}


SWEEP = Sweep(
    name=NAME,
    parameters=Parameters,
    compute=compute,
    batched=("spectral_exponent", "target_exponent", "transport", "space_exponent",
             "time_exponent", "rtol"),
    execution=Execution.VMAP,
    description="shell-model loss exponent over (alpha, beta[, transport]) vs the formula",
)


def fitted_exponent(record: Record):
    """The loss exponent of one record, fitted on the plateau of its local slope."""
    from ..renorm import PlateauWindow, fit_power_law

    ts, loss = record.outputs["ts"], record.outputs["loss"]
    keep = ts >= record.config["fit_from"]
    return fit_power_law(ts[keep], loss[keep], window=PlateauWindow(min_points=6,
                                                                    tolerance=0.02))


def report(records: list[Record], out_dir: pathlib.Path) -> dict:
    """Table of measured against predicted exponents, and its figure."""
    order = ("transport", "space_exponent", "time_exponent", "spectral_exponent",
             "target_exponent", "t_max")
    records = sorted(records, key=lambda r: tuple(r.config[k] for k in order))
    rows = []
    for record in records:
        params = build_parameters(Parameters, record.config)
        row = {**record.config, "status": record.status, "predicted": None}
        row["predicted"] = params.predicted_exponent()
        if record.ok and bool(record.outputs["succeeded"]):
            fit = fitted_exponent(record)
            row.update(measured=fit.exponent, ci_low=fit.ci_low, ci_high=fit.ci_high,
                       window=[fit.x_low, fit.x_high], steps=int(record.outputs["steps"]))
        else:
            row.update(measured=None, error=record.error or "solver did not succeed")
        rows.append(row)
    fitted = [r for r in rows if r["measured"] is not None]
    errors = np.array([r["measured"] - r["predicted"] for r in fitted])
    exponents = [{
        "quantity": f"loss ∝ t^-p (α={r['spectral_exponent']:g}, β={r['target_exponent']:g}, "
                    f"v0={r['transport']:g}, a={r['space_exponent']:g}, "
                    f"b={r['time_exponent']:g})",
        "measured": r["measured"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
        "predicted": r["predicted"],
    } for r in fitted]
    result = {
        "table": rows,
        "num_configurations": len(rows),
        "num_failed": len(rows) - len(fitted),
        "max_abs_error": float(np.max(np.abs(errors))) if fitted else None,
        "median_abs_error": float(np.median(np.abs(errors))) if fitted else None,
        "exponents": exponents,
    }
    print(f"[{NAME}] {len(fitted)}/{len(rows)} fitted; |measured - formula|: median "
          f"{result['median_abs_error']}, max {result['max_abs_error']}")
    return publish(out_dir, NAME, result, _figure(records, rows) if fitted else None)


def _figure(records, rows):
    fig, (ax, bx) = new_figure(ncols=2, panel=(6.0, 4.5))
    fitted = [r for r in rows if r["measured"] is not None]
    predicted = np.array([r["predicted"] for r in fitted])
    measured = np.array([r["measured"] for r in fitted])
    for lazy, marker, label in ((True, "o", "lazy (v0 = 0)"), (False, "s", "drift transport")):
        pick = [r for r in fitted if (r["transport"] == 0) == lazy]
        if pick:
            ax.errorbar([r["predicted"] for r in pick], [r["measured"] for r in pick],
                        yerr=[[r["measured"] - r["ci_low"] for r in pick],
                              [r["ci_high"] - r["measured"] for r in pick]],
                        fmt=marker, ms=5, label=f"shell model, {label}")
    span = [predicted.min() * 0.9, predicted.max() * 1.1]
    ax.plot(span, span, "k--", lw=1, label="formula")
    ax.set_xlabel(r"formula $p = \sigma\max(1, (1+b)/a)$")
    ax.set_ylabel("measured loss exponent (plateau fit, 95% CI)")
    ax.legend(loc="upper left")
    shown = [r for r in records if r.ok][:: max(1, len(records) // 8)]
    for i, record in enumerate(shown):
        c = record.config
        bx.loglog(record.outputs["ts"], record.outputs["loss"], lw=1, color=f"C{i % 10}",
                  ls="-" if c["transport"] == 0 else "--",
                  label=rf"$\alpha$={c['spectral_exponent']:g}, $\beta$={c['target_exponent']:g}"
                        rf", $v_0$={c['transport']:g}")
    bx.set_xlabel(r"$t$")
    bx.set_ylabel(r"$\sum_s E_s$ (loss × 2n)")
    bx.legend(loc="lower left", fontsize=7)
    worst = np.max(np.abs(measured - predicted))
    claim_title(fig, f"{len(fitted)} shell-model runs: measured loss exponents on the formula's "
                     "line", f"largest |measured − formula| = {worst:.3f}")
    return fig
