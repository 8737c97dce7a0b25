"""Log-shift invariance: does the shell coupling depend on the shell distance only?

docs/theory.md §2.5. Gradient flow is covariant under $t \\to st$, $\\lambda \\to \\lambda/s$;
transport of that form (b = a − 1) makes the renormalized coupling between shells s and s+d,
at the similarity time $\\tau = \\lambda_st$, a function of d and τ only. How far a run is from
that is measured here, as an output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fit_data import run_centers

__all__ = ["LogShiftReport", "log_shift_invariance"]


@dataclass(frozen=True)
class LogShiftReport:
    """Log-shift invariance of the shell coupling at distance d.

    $C_s(\\tau) = T_{s,s+d}(t)/(\\lambda_s\\sqrt{E_sE_{s+d}})$ at the similarity time
    $t = \\tau/\\lambda_s$ (dimensionless; for covariant transport, $b = a - 1$, it depends on
    d and τ only). `couplings` (len(taus), S) with NaN where shell s is unavailable;
    `spread` (len(taus),): std over s / |mean over s|; `mean_spread`: its mean over the τ
    with at least `min_shells` shells.
    """

    distance: int
    taus: np.ndarray
    shells: np.ndarray
    couplings: np.ndarray
    spread: np.ndarray
    mean_spread: float

    def as_dict(self) -> dict:
        return {
            "distance": self.distance,
            "taus": self.taus.tolist(),
            "shells": self.shells.tolist(),
            "couplings": np.where(np.isfinite(self.couplings), self.couplings, None).tolist(),
            "spread": np.where(np.isfinite(self.spread), self.spread, None).tolist(),
            "mean_spread": self.mean_spread,
        }


def log_shift_invariance(
    ts, transfer, energy, shells, *, distance: int = 1, taus=None, min_shells: int = 3
) -> LogShiftReport:
    """How far the measured coupling between shells s and s+d is from depending on d only.

    **Arguments:** `ts` (T,) > 0, `transfer` (T, S+2, S+2) ($T_{ss'}$, into s from s'),
    `energy` (T, S+2), `shells` (centres or `LogShells`), `distance` d ≥ 1, `taus` (similarity
    times $\\lambda_s t$; default 12 log-spaced values over the range the run covers),
    `min_shells`: shells needed at a τ for its spread to count.

    **Returns:** a `LogShiftReport`. Interior shells 1..S−d only (shells 0 and S+1 are open).
    """
    centers = run_centers(shells)
    ts = np.asarray(ts, dtype=np.float64)
    transfer, energy = np.asarray(transfer, np.float64), np.asarray(energy, np.float64)
    num = centers.shape[0]
    if transfer.shape != (ts.shape[0], num, num) or energy.shape != (ts.shape[0], num):
        raise ValueError(
            f"expected transfer (T, {num}, {num}) and energy (T, {num}); got {transfer.shape}, "
            f"{energy.shape}"
        )
    if distance < 1 or distance > num - 3:
        raise ValueError(f"distance must be in [1, {num - 3}], got {distance}")
    if np.any(ts <= 0):
        raise ValueError("ts must be > 0")
    shell_ids = np.arange(1, num - 1 - distance)
    logt = np.log(ts)
    if taus is None:
        lo = np.log(ts[0] * centers[shell_ids].min())
        hi = np.log(ts[-1] * centers[shell_ids].max())
        taus = np.exp(np.linspace(lo, hi, 12))
    taus = np.asarray(taus, dtype=np.float64)
    couplings = np.full((taus.shape[0], shell_ids.shape[0]), np.nan)
    for j, s in enumerate(shell_ids):
        with np.errstate(divide="ignore", invalid="ignore"):
            c = transfer[:, s, s + distance] / (
                centers[s] * np.sqrt(energy[:, s] * energy[:, s + distance])
            )
        target = np.log(taus / centers[s])
        inside = (target >= logt[0]) & (target <= logt[-1])
        good = np.isfinite(c)
        if good.sum() >= 2:
            couplings[inside, j] = np.interp(target[inside], logt[good], c[good])
    count = np.sum(np.isfinite(couplings), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(count[:, None] > 0, couplings, 0.0), axis=1)
        std = np.nanstd(np.where(count[:, None] > 0, couplings, 0.0), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.where(count >= min_shells, std / np.abs(mean), np.nan)
    mean_spread = float(np.nanmean(spread)) if np.any(np.isfinite(spread)) else float("nan")
    return LogShiftReport(distance, taus, shell_ids, couplings, spread, mean_spread)
