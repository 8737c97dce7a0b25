"""The self-check of a Kato run: an independent integration of $\\dot e = -M e$ carried along.

The Kato system is exact mathematics, but its implementation has many ways to be silently wrong
(a cluster transported with the wrong rotation, an operator whose derivative does not match its
values, a frame that lost orthonormality). The ambient flow $\\dot e = -Me$ needs none of that
machinery: one matrix–vector product per right-hand side. `solve_kato` integrates it in the same
diffrax state (so it shares the step sequence and is error-controlled with the rest) and compares
the reconstructed residual $\\Phi c$ with it at every saved time (docs/theory.md §2.2).

A mismatch beyond `SelfCheck.tolerance` is a failed run: `KatoSolution.succeeded` is False and,
with `throw=True`, `solve_kato` raises `SelfCheckError`, naming the time and the modes.
"""

from __future__ import annotations

import dataclasses

import numpy as np


class PrecisionWarning(UserWarning):
    """A solve runs in a precision that cannot resolve the spectrum it meets."""


class SelfCheckError(RuntimeError):
    """The Kato reconstruction disagrees with the independent ambient integration."""


class OperatorError(ValueError):
    """M(t) (or its derivative) was invalid at some time inside the integration window."""


@dataclasses.dataclass(frozen=True)
class SelfCheck:
    """Options of the self-check of `solve_kato`.

    - `enabled`: carry the independent integration and compare (default True). Its cost is one
      matrix–vector product per right-hand side, next to an `eigh` and five matrix products.
    - `tolerance`: largest accepted $\\max_t \\|\\Phi c - e\\|_2 / \\|e(t_0)\\|_2$. None takes
      `1000 × rtol` of the solve (both integrations are error-controlled at `rtol`, so an honest
      run disagrees by a small multiple of it; see `resolve`).
    """

    enabled: bool = True
    tolerance: float | None = None

    def __post_init__(self):
        if not isinstance(self.enabled, bool):
            raise TypeError(f"SelfCheck.enabled must be a bool, got {self.enabled!r}")
        tol = self.tolerance
        valid = isinstance(tol, (int, float)) and np.isfinite(tol) and tol > 0
        if tol is not None and not valid:
            raise ValueError(f"SelfCheck.tolerance must be a finite number > 0, got {tol!r}")

    def resolve(self, rtol: float) -> float:
        """The tolerance to use with a solve at relative tolerance `rtol`."""
        if self.tolerance is not None:
            return float(self.tolerance)
        return float(max(1e3 * rtol, 1e-12))


def describe_mismatch(ts, mismatch, mode_index, tolerance) -> str:
    """Human-readable account of the worst mismatch: time, size and the modes that carry it."""
    ts, mismatch, mode_index = (np.asarray(x) for x in (ts, mismatch, mode_index))
    bad = np.flatnonzero(~(mismatch <= tolerance))
    first, worst = int(bad[0]), int(np.nanargmax(np.where(np.isfinite(mismatch), mismatch, np.inf)))
    return (
        f"the Kato reconstruction Φc disagrees with the independent integration of de/dt = -Me: "
        f"first at t = {float(ts[first]):.6g} (relative mismatch {float(mismatch[first]):.3g}, "
        f"mostly mode {int(mode_index[first])} in descending order), worst at t = "
        f"{float(ts[worst]):.6g} ({float(mismatch[worst]):.3g}, mode {int(mode_index[worst])}); "
        f"tolerance {tolerance:.3g}. Check that the operator's derivative matches its values "
        f"(e.g. an InterpolatedOperator with inconsistent dMs), or tighten rtol/atol."
    )
