"""Measured shell data for closure fits: checks, the points to fit and the residual scale.

A run is plain arrays, so any source works (a Kato run, a `TransportChain`, a recorded
network): times `ts` (T,) > 0, shell energies `energy` (T, S+2), boundary fluxes `flux`
(T, S+1) in the convention of docs/theory.md §2.4, and the shells (a `LogShells` or centres).
"""

from __future__ import annotations

import numpy as np

from .faces import shell_centers

__all__ = [
    "check_run",
    "default_mask",
    "flux_scale",
    "resolve_mask",
    "retained_mask",
    "run_centers",
]


def run_centers(shells) -> np.ndarray:
    """Concrete float64 shell centres (checked by `faces.shell_centers`)."""
    return np.asarray(shell_centers(shells), dtype=np.float64)


def check_run(ts, energy, flux, centers):
    """(ts, energy, flux) as float64 arrays. **Raises:** `ValueError` on shapes, NaN/Inf or
    t ≤ 0 (closures have a factor $t^b$)."""
    ts, energy, flux = (np.asarray(x, dtype=np.float64) for x in (ts, energy, flux))
    num = centers.shape[0]
    if ts.ndim != 1 or energy.shape != (ts.shape[0], num) or flux.shape != (ts.shape[0], num - 1):
        raise ValueError(
            f"expected ts (T,), energy (T, {num}) and flux (T, {num - 1}) for {num} shells; got "
            f"{ts.shape}, {energy.shape}, {flux.shape}"
        )
    for name, x in (("ts", ts), ("energy", energy), ("flux", flux)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{name} contains NaN or Inf")
    if np.any(ts <= 0):
        raise ValueError(f"ts must be > 0 (the closure has a factor t^b), got min {ts.min()}")
    return ts, energy, flux


def default_mask(energy, flux) -> np.ndarray:
    """Boundaries used by default: not touching the open-ended shells 0 and S+1 (their
    $E/\\Delta u$ is no density), and with a non-zero flux."""
    flux = np.asarray(flux)
    mask = np.ones(flux.shape, dtype=bool)
    mask[:, 0] = False
    mask[:, -1] = False
    return mask & (np.abs(flux) > 0)


def retained_mask(energy, *, reference=None, keep: float = 0.5) -> np.ndarray:
    """Boundaries whose two interior shells still hold at least `keep` of their reference
    energy (default: the first row): ahead of both the dissipative and the transport front,
    where the profile is still smooth on the shell scale and a coarse closure can hold."""
    energy = np.asarray(energy)
    ref = energy[0] if reference is None else np.asarray(reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.where(ref[None, :] > 0, energy / ref[None, :], 0.0) >= keep
    mask = kept[:, :-1] & kept[:, 1:]
    mask[:, 0] = False
    mask[:, -1] = False
    return mask


def resolve_mask(mask, energy, flux) -> np.ndarray:
    """`mask` as a bool array of the flux's shape (None: `default_mask`)."""
    mask = default_mask(energy, flux) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != flux.shape:
        raise ValueError(f"mask must have shape {flux.shape}, got {mask.shape}")
    return mask


def flux_scale(flux, mask, rel_floor: float) -> np.ndarray:
    """Residual scale $s = |\\Pi| + \\rho\\max|\\Pi|$ (fluxes span decades across shells and
    time; an absolute loss would see only the largest)."""
    peak = np.max(np.abs(flux[mask])) if np.any(mask) else 1.0
    return np.abs(flux) + rel_floor * peak
