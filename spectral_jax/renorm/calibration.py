"""Calibrating the renormalizability test on planted chains (docs/theory.md §2.5).

`ratio_test` is the whole protocol on a `TransportChain`: run the exact modewise ODE, measure
shell budgets at two shell ratios, fit the closure at one and predict the other.
`renormalizability_null` runs it on chains with the same spectrum, initial state and times
whose velocity is (a) an exact power law, for several planted laws: the error a renormalizable
transport scores through discretisation alone; (b) not a power law (a broken power law, a
bump): what a transport the closure cannot represent scores. A threshold between the two is
what "renormalizable" means for that spectrum and window.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ..shells.grid import LogShells
from .closure_fit import ClosureFit, fit_closure
from .fit_data import retained_mask
from .options import ClosureKind, Reconstruction
from .planted import TransportChain, chain_from_velocity, solve_chain
from .renormalizability import (
    RENORMALIZABILITY_THRESHOLD,
    RenormalizabilityReport,
    renormalizability,
)
from .velocities import BrokenPowerLawVelocity, BumpVelocity, PowerLawVelocity

__all__ = [
    "DEFAULT_NON_POWER_LAWS",
    "DEFAULT_PLANTED",
    "RatioTest",
    "RenormalizabilityNull",
    "renormalizability_null",
    "ratio_test",
]


@dataclass(frozen=True)
class RatioTest:
    """Settings of the fit-at-one-ratio, predict-at-another protocol.

    - `fit_ratio`, `predict_ratio`: the two shell ratios; `lam_ref_margin`: λ_ref as a multiple
      of λ_max (keep it off the eigenvalue lattice, see docs/theory.md §2.4).
    - `min_modes`: boundaries between shells of fewer modes are left out (the chain is
      discrete there, not a continuum drift); `keep`: and those whose shells hold less than
      this fraction of their initial energy (behind the dissipative front, `retained_mask`).
    - `scheme`, `kind`, `num_bootstrap`: passed to `fit_closure`.
    """

    fit_ratio: float = 2.0
    predict_ratio: float = 4.0
    lam_ref_margin: float = 1.1
    min_modes: int = 3
    keep: float = 0.5
    scheme: Reconstruction = Reconstruction.EXPONENTIAL
    kind: ClosureKind = ClosureKind.DRIFT
    num_bootstrap: int = 0


def _shell_data(run, shells, settings):
    budget = run.shell_budget(shells)
    energy, flux = np.asarray(budget.energy), np.asarray(budget.flux)
    counts = np.bincount(np.asarray(shells.assign(run.eigenvalues)),
                         minlength=shells.num_shells)
    enough = (counts[:-1] >= settings.min_modes) & (counts[1:] >= settings.min_modes)
    mask = retained_mask(energy[1:], reference=energy[0], keep=settings.keep) & enough[None, :]
    return energy[1:], flux[1:], mask


def ratio_test(
    chain: TransportChain, c0, ts, settings: RatioTest = RatioTest(), *, null=None
) -> tuple[ClosureFit, RenormalizabilityReport]:
    """Fit at `settings.fit_ratio`, predict at `settings.predict_ratio`, on one chain.

    **Arguments:** `chain`, `c0` (n,) the coefficients at t = 0, `ts` (T,) > 0 the times to
    fit and compare (the run starts at 0), `settings`, `null`: a `RenormalizabilityNull` whose
    threshold and numbers the report carries (default: `RENORMALIZABILITY_THRESHOLD`, no null).

    **Returns:** (the `ClosureFit` at the fit ratio, the `RenormalizabilityReport` at the other).
    """
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2 or np.any(ts <= 0):
        raise ValueError(f"ts must be 1-D with at least 2 times > 0, got {ts!r}")
    run = solve_chain(chain, jnp.asarray(c0), jnp.asarray(np.concatenate([[0.0], ts])))
    lam = np.asarray(chain.eigenvalues)
    lam_ref = settings.lam_ref_margin * lam[0]
    data = {}
    for ratio in (settings.fit_ratio, settings.predict_ratio):
        count = max(1, int(np.floor(np.log(lam_ref / lam[-1]) / np.log(ratio))))
        shells = LogShells(lam_ref, ratio, count)
        data[ratio] = (shells, *_shell_data(run, shells, settings))
    shells, energy, flux, mask = data[settings.fit_ratio]
    fit = fit_closure(ts, energy, flux, shells, kind=settings.kind, scheme=settings.scheme,
                      mask=mask, num_bootstrap=settings.num_bootstrap)
    shells, energy, flux, mask = data[settings.predict_ratio]
    report = renormalizability(fit, ts, energy, flux, shells, mask=mask, integrate=False,
                               null=null)
    return fit, report


DEFAULT_PLANTED = (
    PowerLawVelocity(1.0, 0.5),
    PowerLawVelocity(0.5, 0.3),
    PowerLawVelocity(1.0, 0.8),
)
DEFAULT_NON_POWER_LAWS = (
    BrokenPowerLawVelocity(1.0, 0.3, 1.5, lam_break=0.03),
    BumpVelocity(1.0, 0.5, amplitude=3.0, lam_center=0.03, width=0.7),
)


@dataclass(frozen=True)
class RenormalizabilityNull:
    """Errors of the ratio test on planted chains, and the threshold they calibrate.

    `planted_errors`: one per exactly planted power law; `non_power_law_errors`: one per
    velocity that is not a power law; `threshold`: the threshold in force; `separated`:
    whether every planted error is below it and every non-power-law error above it.
    """

    planted: tuple
    planted_errors: tuple
    non_power_laws: tuple
    non_power_law_errors: tuple
    threshold: float

    @property
    def separated(self) -> bool:
        return max(self.planted_errors) <= self.threshold < min(self.non_power_law_errors)

    def as_dict(self) -> dict:
        return {
            "planted": [repr(v) for v in self.planted],
            "planted_errors": list(self.planted_errors),
            "non_power_laws": [repr(v) for v in self.non_power_laws],
            "non_power_law_errors": list(self.non_power_law_errors),
            "threshold": self.threshold,
            "separated": self.separated,
        }


def renormalizability_null(
    eigenvalues,
    c0,
    ts,
    *,
    time_exponent: float = 0.0,
    planted=DEFAULT_PLANTED,
    non_power_laws=DEFAULT_NON_POWER_LAWS,
    settings: RatioTest = RatioTest(),
    threshold: float | None = None,
) -> RenormalizabilityNull:
    """The ratio test's errors on chains with this spectrum, `c0` and `ts`, one per velocity.

    **Arguments:** `eigenvalues` (n,) strictly decreasing, `c0` (n,), `ts` (T,) > 0,
    `time_exponent` b of every chain, `planted` (velocities that are exact power laws),
    `non_power_laws` (velocities that are not), `settings`, `threshold` (default
    `RENORMALIZABILITY_THRESHOLD`).
    """
    def errors(velocities):
        out = []
        for velocity in velocities:
            chain = chain_from_velocity(eigenvalues, velocity, time_exponent=time_exponent)
            out.append(ratio_test(chain, c0, ts, settings)[1].flux_error)
        return tuple(out)

    if not planted or not non_power_laws:
        raise ValueError("the null needs at least one planted and one non-power-law velocity")
    return RenormalizabilityNull(
        planted=tuple(planted),
        planted_errors=errors(planted),
        non_power_laws=tuple(non_power_laws),
        non_power_law_errors=errors(non_power_laws),
        threshold=RENORMALIZABILITY_THRESHOLD if threshold is None else float(threshold),
    )

