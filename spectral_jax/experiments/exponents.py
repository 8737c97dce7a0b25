"""Loss exponents three ways: formula, shell ODE, microscopic run (docs/theory.md §2.6).

For each (α, β) and each transport regime — lazy (no transport), drift (v0 = 0.2, a = 0.5,
b = 0) and covariant drift (a = 0.5, b = a − 1) — the exponent p of $L \\propto t^{-p}$:

- formula: $\\sigma\\max(1, (1+b)/a)$, $\\sigma = (\\beta-1)/\\alpha$;
- microscopic: lazy — the exact modal sum $\\sum_k\\varepsilon_ke^{-2\\lambda_kt}$ (the Kato ODE
  of a frozen kernel, W = 0; `tests/test_exponents.py` checks it against `solve_kato`);
  drift — the planted `TransportChain` (the exact Kato modewise ODE with closed-form frame,
  n modes), fitted on a window that ends before the front reaches the last tenth of the
  spectrum;
- shell ODE, same window: started from the microscopic shell energies, planted closure;
- shell ODE, late window: continuum initial condition, three decades late enough for the
  asymptote (the approach is slow, see `spectral_jax.renorm.exponents`).

Also the self-similar collapse: lazy shell energies against $\\lambda_st$, drift shell energies
against $\\lambda_s^at^{1+b}$.

A sweep (`Execution.EACH`: the chain solver picks its method from concrete values): one
configuration is one (α, β, regime, v0); `compute` stores the three loss curves, and `report`
fits them, builds the table, the collapses (of the smallest (α, β)) and the figure
(`_exponents_report`).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import pathlib

import numpy as np

from ..sweep import Execution, Record, Sweep, build_parameters

NAME = "exponents"


class Regime(enum.StrEnum):
    """Transport of the microscopic run and of the shell closure."""

    LAZY = "lazy"
    DRIFT = "drift"
    COVARIANT = "covariant"


# (a, b) of the drift closure $v = -v_0\lambda^at^b$; None: no transport.
REGIMES = {
    Regime.LAZY: None,
    Regime.DRIFT: (0.5, 0.0),
    Regime.COVARIANT: (0.5, -0.5),
}


@dataclasses.dataclass(frozen=True)
class Parameters:
    alpha: float = 2.0  # spectral exponent: λ_k = k^-α
    beta: float = 2.0  # target exponent: ε_k = k^-β
    regime: Regime = Regime.LAZY
    # The coherent chain realises the drift only while transport is slow against the
    # dissipation of the top modes (v0 ≲ 0.3 λ_max here); the presets' v0 = 1 configuration
    # documents the breakdown. Unused in the lazy regime.
    v0: float = 0.2
    num_modes: int = 100_000
    ratio: float = 2.0  # shell ratio of the same-window shell ODE
    decades: float = 2.0  # length of the microscopic fit window
    late_t_min: float = 1e4  # the late window of the continuum shell ODE
    late_t_max: float = 1e7
    num_times: int = 41
    t_cap: float = 1e5  # latest end of the microscopic window
    rtol: float = 1e-6  # of the chain run (implicit Kvaerno5 over these horizons)

    def __post_init__(self):
        try:
            object.__setattr__(self, "regime", Regime(self.regime))
        except ValueError:
            raise ValueError(f"regime must be one of {[r.value for r in Regime]}, got "
                             f"{self.regime!r}") from None
        if not self.alpha > 0 or not self.beta > 1:
            raise ValueError(f"need alpha > 0 and beta > 1 (finite target energy), got "
                             f"alpha={self.alpha}, beta={self.beta}")
        if not 0 < self.v0 < math.inf:
            raise ValueError(f"v0 must be positive and finite, got {self.v0}")
        if self.num_modes < 100:
            raise ValueError(f"num_modes must be >= 100, got {self.num_modes}")
        if not self.ratio > 1:
            raise ValueError(f"ratio must be > 1, got {self.ratio}")
        if not self.decades > 0:
            raise ValueError(f"decades must be > 0, got {self.decades}")
        if not 0 < self.late_t_min < self.late_t_max < math.inf:
            raise ValueError(f"need 0 < late_t_min < late_t_max, got {self.late_t_min}, "
                             f"{self.late_t_max}")
        if self.num_times < 8:
            raise ValueError(f"num_times must be >= 8, got {self.num_times}")
        if not self.t_cap > 0:
            raise ValueError(f"t_cap must be > 0, got {self.t_cap}")
        if not 0 < self.rtol < 1:
            raise ValueError(f"rtol must lie in (0, 1), got {self.rtol}")

    @classmethod
    def from_mapping(cls, values) -> Parameters:
        """From a stored record's config (where the regime is a plain string)."""
        return build_parameters(cls, values)

    @property
    def drift(self) -> tuple[float | None, float]:
        """(a, b) of the closure; a = None in the lazy regime."""
        ab = REGIMES[self.regime]
        return (None, 0.0) if ab is None else ab

    def formula(self) -> float:
        from ..renorm import exponents as ex

        a, b = self.drift
        return ex.predicted_exponent(self.alpha, self.beta, space_exponent=a, time_exponent=b)

    def window(self) -> tuple[float, float]:
        """Fit window for the microscopic run: ends when a front reaches mode n/10."""
        lam_stop = (self.num_modes / 10.0) ** -self.alpha
        t_lazy = 1.0 / (2.0 * lam_stop)
        a, b = self.drift
        if a is None:
            t_hi = t_lazy
        else:
            t_drift = ((1 + b) * lam_stop**-a / (a * self.v0)) ** (1.0 / (1 + b))
            t_hi = min(t_lazy, t_drift)
        t_hi = min(t_hi, self.t_cap)
        return t_hi / 10**self.decades, t_hi


def _shells(lam, ratio):
    import spectral_jax as sj

    count = int(np.ceil(np.log(1.3 / lam[-1]) / np.log(ratio)))
    return sj.LogShells(1.3, ratio, count)  # lam_ref 1.3: no 1/k^α on an edge


def compute(params) -> dict:
    """The microscopic, same-window shell ODE and late-window shell ODE loss curves of one
    configuration (fitted in `report`); lazy runs also store the shell energies of the lazy
    collapse, drift runs the chain's step count."""
    import jax.numpy as jnp

    from ..renorm import ClosureKind, closure, exponents as ex, power_law_transport, solve_chain
    from ..renorm.shell_model import solve_shells

    p = Parameters.from_mapping(params)
    n = p.num_modes
    lam, eps = ex.power_law_modes(n, p.alpha, p.beta)
    shells = _shells(lam, p.ratio)
    e0_shells = ex.shell_energies(shells, lam, eps)
    a, b = p.drift
    t_lo, t_hi = p.window()
    t0 = 1e-8 if b < 0 else 0.0  # the covariant modulation t^b is singular at 0
    ts = np.geomspace(max(t_lo / 100, 1e-3), t_hi, p.num_times)
    out = {}
    if a is None:
        micro_loss = ex.lazy_loss(lam, eps, ts)
        c = closure(ClosureKind.NONE)
        # The lazy collapse: microscopic shell energies over the whole decay.
        member = np.asarray(shells.membership(jnp.asarray(lam)))
        cts = np.geomspace(1e-2, 1.0 / (2 * lam[-1]), 80)
        out.update(
            collapse_ts=cts, collapse_centers=np.asarray(shells.centers),
            collapse_energy=np.stack([member.T @ (eps * np.exp(-2 * lam * t)) for t in cts]),
        )
    else:
        chain = power_law_transport(n, alpha=p.alpha, v0=p.v0, space_exponent=a,
                                    time_exponent=b)
        # Error control in the energy norm: atol = rtol·‖c0‖. The loss is a sum of squares;
        # asking the tiny tail modes for relative accuracy costs ~50× the steps (they
        # ring at the end of the chain) and changes L by ~1e-3 (tests/test_stiff.py).
        c0 = np.sqrt(eps)
        run_ = solve_chain(chain, jnp.asarray(c0), jnp.asarray(np.concatenate([[t0], ts])),
                           rtol=p.rtol, atol=p.rtol * float(np.linalg.norm(c0)))
        micro_loss = np.asarray(run_.loss)[1:]
        out["micro_steps"] = np.asarray(int(run_.stats["num_accepted_steps"]))
        c = closure(ClosureKind.DRIFT, v0=p.v0, space_exponent=a, time_exponent=b)
    ode_ts = np.concatenate([[max(t0, 1e-8)], ts]) if b < 0 else np.concatenate([[0.0], ts])
    ode = solve_shells(c, shells, jnp.asarray(e0_shells), jnp.asarray(ode_ts),
                       atol=1e-14 * float(e0_shells.sum()))
    _, late = ex.shell_ode_exponent(
        ex.sigma(p.alpha, p.beta), c, t_min=p.late_t_min, t_max=p.late_t_max, count=80,
        t_start=1e-2, t_end=p.late_t_max,
    )
    return {
        **out, "ts": ts, "micro_loss": micro_loss, "ode_loss": np.asarray(ode.total)[1:] / (2 * n),
        "window": np.array([t_lo, t_hi]), "late_ts": np.asarray(late.ts),
        "late_total": np.asarray(late.total), "late_energy": np.asarray(late.energy),
        "late_centers": np.asarray(late.centers),
    }


SWEEP = Sweep(
    name=NAME,
    parameters=Parameters,
    compute=compute,
    execution=Execution.EACH,
    description="loss exponents: formula vs shell ODE vs microscopic run, lazy and drift",
)


def report(records: list[Record], out_dir: pathlib.Path) -> dict:
    """The table of exponents three ways, the collapses and the figure, from the records.

    Rows are ordered by (α, β, regime) with the configurations of a larger v0 than the
    smallest transport v0 last: those are the strong-transport breakdown, left out of the
    microscopic-vs-shell-ODE agreement. Failed records (and records whose fit fails) are
    listed under `failed` and left out of everything else.
    """
    from ._common import publish
    from ._exponents_report import build_result, figure

    result, curves, collapses = build_result(records)
    fig = figure(result, curves, *collapses) if result["rows"] else None
    print(f"[{NAME}] (alpha, beta) regime    | formula | shell ODE late | shell ODE window | micro")
    for r in result["rows"]:
        print(
            f"[{NAME}] ({r['alpha']:g}, {r['beta']:g}) {r['regime']:<10}| {r['formula']:7.3f} | "
            f"{r['ode_late_window']:14.3f} | {r['ode_same_window']:16.3f} | {r['micro']:.3f}"
        )
    for f in result["failed"]:
        print(f"[{NAME}] FAILED ({f['config']['alpha']:g}, {f['config']['beta']:g}) "
              f"{f['config']['regime']} v0={f['config']['v0']:g}: {f['error']}")
    return publish(out_dir, NAME, result, fig)
