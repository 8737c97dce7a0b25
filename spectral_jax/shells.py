"""Logarithmic spectral shells and the modewise shell energy budget (DESIGN 2.3–2.4).

Shell 0 holds $\\lambda > \\lambda_\\text{ref}$; shell s (1 ≤ s ≤ S) holds
$\\lambda_\\text{ref} b^{-s} < \\lambda \\le \\lambda_\\text{ref} b^{-(s-1)}$; shell S+1 (the tail)
holds everything $\\le \\lambda_\\text{ref} b^{-S}$, zero modes included.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._validation import as_concrete

__all__ = ["LogShells", "ShellBudget", "shell_budget"]


class LogShells(eqx.Module):
    """S + 2 logarithmic shells set by `lam_ref`, `ratio` b > 1 and `count` S ≥ 1."""

    lam_ref: Float[Array, ""]
    ratio: Float[Array, ""]
    count: int = eqx.field(static=True)

    def __init__(self, lam_ref, ratio, count: int):
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
            raise ValueError(f"LogShells: count must be an integer >= 1, got {count!r}")
        lam_ref_c, ratio_c = as_concrete(lam_ref), as_concrete(ratio)
        if lam_ref_c is not None and not (np.isfinite(lam_ref_c) and lam_ref_c > 0):
            raise ValueError(f"LogShells: lam_ref must be finite and > 0, got {lam_ref!r}")
        if ratio_c is not None and not (np.isfinite(ratio_c) and ratio_c > 1):
            raise ValueError(f"LogShells: ratio must be finite and > 1, got {ratio!r}")
        self.lam_ref = jnp.asarray(lam_ref)
        self.ratio = jnp.asarray(ratio)
        self.count = int(count)

    @property
    def num_shells(self) -> int:
        return self.count + 2

    @property
    def edges(self) -> Float[Array, " S+1"]:
        """Upper edges $\\lambda_\\text{ref} b^{-(s-1)}$ of shells s = 1..S+1, descending."""
        return self.lam_ref * self.ratio ** -jnp.arange(self.count + 1, dtype=self.lam_ref.dtype)

    @property
    def centers(self) -> Float[Array, " S+2"]:
        """Shell centres $\\lambda_s = \\lambda_\\text{ref} b^{-(s-1/2)}$, s = 0..S+1."""
        s = jnp.arange(self.num_shells, dtype=self.lam_ref.dtype)
        return self.lam_ref * self.ratio ** -(s - 0.5)

    def assign(self, eigenvalues: Float[Array, "... n"]) -> Int[Array, "... n"]:
        """Shell index of each eigenvalue: the number of upper edges at or above it."""
        edges = self.edges.astype(eigenvalues.dtype).reshape((1,) * eigenvalues.ndim + (-1,))
        return jnp.sum(eigenvalues[..., None] <= edges, axis=-1)

    def membership(self, eigenvalues: Float[Array, " n"]) -> Float[Array, "n S+2"]:
        """One-hot (n, S+2) matrix of shell membership."""
        return jax.nn.one_hot(self.assign(eigenvalues), self.num_shells, dtype=eigenvalues.dtype)


class ShellBudget(eqx.Module):
    """Shell quantities (a leading time axis where the inputs had one).

    - `energy` (S+2,): $E_s = \\sum_{k\\in s}\\varepsilon_k$
    - `dissipation` (S+2,): $D_s = 2\\sum_{k\\in s}\\lambda_k\\varepsilon_k$
    - `transfer` (S+2, S+2): $T_{ss'} = \\sum_{k\\in s, j\\in s'} T_{kj}$, into s from s'
    - `flux` (S+1,): $\\Pi_{s|s+1}$, net flux from shells ≤ s into shells > s
    """

    energy: Float[Array, "... S+2"]
    dissipation: Float[Array, "... S+2"]
    transfer: Float[Array, "... S+2 S+2"]
    flux: Float[Array, "... S+1"]

    @property
    def rate(self) -> Float[Array, "... S+2"]:
        """$dE_s/dt = -D_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}$ (no edge crossing)."""
        zero = jnp.zeros_like(self.flux[..., :1])
        inflow = jnp.concatenate([zero, self.flux], axis=-1)
        outflow = jnp.concatenate([self.flux, zero], axis=-1)
        return -self.dissipation + inflow - outflow


def flux_from_transfer(transfer: Float[Array, "S+2 S+2"]) -> Float[Array, " S+1"]:
    """$\\Pi_{s|s+1} = \\sum_{a \\le s < b'} T_{b'a}$ for s = 0..S."""
    num = transfer.shape[-1]
    idx = jnp.arange(num)
    boundary = jnp.arange(num - 1)
    below = (idx[None, :] <= boundary[:, None]).astype(transfer.dtype)  # (S+1, a)
    above = (idx[None, :] > boundary[:, None]).astype(transfer.dtype)  # (S+1, b')
    return jnp.einsum("sb,ba,sa->s", above, transfer, below)


def _shell_budget_single(shells, eigenvalues, coefficients, generator):
    member = shells.membership(eigenvalues)
    energy_modes = coefficients**2
    transfer_modes = 2.0 * generator * jnp.outer(coefficients, coefficients)
    transfer = member.T @ transfer_modes @ member
    return ShellBudget(
        energy=member.T @ energy_modes,
        dissipation=member.T @ (2.0 * eigenvalues * energy_modes),
        transfer=transfer,
        flux=flux_from_transfer(transfer),
    )


@eqx.filter_jit
def shell_budget(
    shells: LogShells,
    eigenvalues: Float[Array, "*T n"],
    coefficients: Float[Array, "*T n"],
    generator: Float[Array, "*T n n"],
) -> ShellBudget:
    """Modewise shell budget from (eigenvalues, coefficients, Kato generator W).

    Accepts a leading time axis (vmapped). Mode energy $\\varepsilon_k = c_k^2$,
    $T_{kj} = 2W_{kj}c_kc_j$.
    """
    eigenvalues, coefficients, generator = map(jnp.asarray, (eigenvalues, coefficients, generator))
    if eigenvalues.shape != coefficients.shape or generator.shape != (
        *eigenvalues.shape,
        eigenvalues.shape[-1],
    ):
        raise ValueError(
            "shell_budget: expected eigenvalues (..., n), coefficients (..., n) and generator "
            f"(..., n, n); got {eigenvalues.shape}, {coefficients.shape}, {generator.shape}"
        )
    if eigenvalues.ndim == 1:
        return _shell_budget_single(shells, eigenvalues, coefficients, generator)
    if eigenvalues.ndim == 2:
        return jax.vmap(_shell_budget_single, in_axes=(None, 0, 0, 0))(
            shells, eigenvalues, coefficients, generator
        )
    raise ValueError(f"shell_budget: at most one leading time axis, got {eigenvalues.shape}")
