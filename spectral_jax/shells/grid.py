"""Logarithmic spectral shells and the modewise shell energy budget (docs/theory.md §2.3–2.4).

Shell 0 holds $\\lambda > \\lambda_\\text{ref}$; shell s (1 ≤ s ≤ S) holds
$\\lambda_\\text{ref} b^{-s} < \\lambda \\le \\lambda_\\text{ref} b^{-(s-1)}$; shell S+1 (the tail)
holds everything $\\le \\lambda_\\text{ref} b^{-S}$, zero modes included.

The budget here is the *modewise* one, built from the Kato quantities
(eigenvalues, coefficients $c$, generator $W$) of `solve_kato`. The gauge-free projector form,
which needs only $(M, \\dot M, e)$, is in `spectral_jax.projector`; the budget over time windows
(with eigenvalues migrating across shell edges) is in `spectral_jax.budget`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._checks import as_concrete

__all__ = [
    "LogShells",
    "ShellBudget",
    "shell_budget",
    "flux_from_transfer",
    "antisymmetric_shell_sum",
]


class LogShells(eqx.Module):
    """S + 2 logarithmic shells set by `lam_ref`, `ratio` b > 1 and `count` S ≥ 1.

    `lam_ref` and `ratio` are arrays (a sweep can vmap over them without recompiling);
    `count` is static (it sets shapes).

    **Raises:** `ValueError` for `count < 1`, a non-positive or non-finite `lam_ref`, or
    `ratio <= 1`.
    """

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

    @classmethod
    def covering(cls, lam_max, lam_min, ratio, *, margin: float = 1.0) -> LogShells:
        """Shells whose logarithmic range [λ_min, λ_max] fits inside shells 1..S.

        `lam_ref = margin · lam_max` and S the smallest count with
        $\\lambda_\\text{ref} b^{-S} < \\lambda_\\text{min}$ (concrete values only).
        """
        lam_max, lam_min, ratio = float(lam_max), float(lam_min), float(ratio)
        if not (0 < lam_min <= lam_max) or ratio <= 1 or margin < 1:
            raise ValueError(
                f"LogShells.covering: need 0 < lam_min <= lam_max, ratio > 1, margin >= 1; got "
                f"{lam_min}, {lam_max}, {ratio}, {margin}"
            )
        lam_ref = margin * lam_max
        count = max(1, int(np.floor(np.log(lam_ref / lam_min) / np.log(ratio))) + 1)
        return cls(lam_ref, ratio, count)

    @property
    def num_shells(self) -> int:
        return self.count + 2

    @property
    def edges(self) -> Float[Array, " S+1"]:
        """Upper edges $\\lambda_\\text{ref} b^{-(s-1)}$ of shells s = 1..S+1, descending.

        `edges[j]` separates shell j (above) from shell j+1 (below); an eigenvalue equal to an
        edge belongs to the shell below.
        """
        return self.lam_ref * self.ratio ** -jnp.arange(self.count + 1, dtype=self.lam_ref.dtype)

    @property
    def centers(self) -> Float[Array, " S+2"]:
        """Shell centres $\\lambda_s = \\lambda_\\text{ref} b^{-(s-1/2)}$, s = 0..S+1.

        For the open shells 0 and S+1 these are the nominal centres of the same formula.
        """
        s = jnp.arange(self.num_shells, dtype=self.lam_ref.dtype)
        return self.lam_ref * self.ratio ** -(s - 0.5)

    def assign(self, eigenvalues: Float[Array, "... n"]) -> Int[Array, "... n"]:
        """Shell index of each eigenvalue: the number of upper edges at or above it."""
        edges = self.edges.astype(eigenvalues.dtype).reshape((1,) * eigenvalues.ndim + (-1,))
        return jnp.sum(eigenvalues[..., None] <= edges, axis=-1)

    def membership(self, eigenvalues: Float[Array, "... n"]) -> Float[Array, "... n S+2"]:
        """One-hot (..., n, S+2) matrix of shell membership."""
        return jax.nn.one_hot(self.assign(eigenvalues), self.num_shells, dtype=eigenvalues.dtype)

    def position(self, eigenvalues: Float[Array, ...]) -> Float[Array, ...]:
        """Continuous shell coordinate $x = \\tfrac12 + \\ln(\\lambda_\\text{ref}/\\lambda)/\\ln b$.

        The centre of shell s sits at x = s and its edges at x = s ± 1/2 (so x is the
        log-spectral coordinate $u/\\ln b + 1/2$ of docs/theory.md §2.5). Inverse: `eigenvalue_at`.
        """
        lam_ref = self.lam_ref.astype(eigenvalues.dtype)
        ratio = self.ratio.astype(eigenvalues.dtype)
        return 0.5 + jnp.log(lam_ref / eigenvalues) / jnp.log(ratio)

    def eigenvalue_at(self, position: Float[Array, ...]) -> Float[Array, ...]:
        """$\\lambda = \\lambda_\\text{ref} b^{-(x - 1/2)}$, the inverse of `position`."""
        lam_ref = self.lam_ref.astype(position.dtype)
        ratio = self.ratio.astype(position.dtype)
        return lam_ref * ratio ** -(position - 0.5)


class ShellBudget(eqx.Module):
    """Shell quantities (a leading time axis where the inputs had one).

    - `energy` (S+2,): $E_s = \\sum_{k\\in s}\\varepsilon_k$
    - `dissipation` (S+2,): $D_s = 2\\sum_{k\\in s}\\lambda_k\\varepsilon_k$
    - `transfer` (S+2, S+2): $T_{ss'} = \\sum_{k\\in s, j\\in s'} T_{kj}$, into s from s'
      (exactly antisymmetric, exactly zero diagonal)
    - `flux` (S+1,): $\\Pi_{s|s+1}$, net flux from shells ≤ s into shells > s
    """

    energy: Float[Array, "... S+2"]
    dissipation: Float[Array, "... S+2"]
    transfer: Float[Array, "... S+2 S+2"]
    flux: Float[Array, "... S+1"]

    @property
    def net_transfer(self) -> Float[Array, "... S+2"]:
        """$\\sum_{s'} T_{ss'}$: energy gained by shell s from all others per unit time."""
        return jnp.sum(self.transfer, axis=-1)

    @property
    def rate(self) -> Float[Array, "... S+2"]:
        """$dE_s/dt = -D_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}$ (no edge crossing)."""
        zero = jnp.zeros_like(self.flux[..., :1])
        inflow = jnp.concatenate([zero, self.flux], axis=-1)
        outflow = jnp.concatenate([self.flux, zero], axis=-1)
        return -self.dissipation + inflow - outflow

    @property
    def total_energy(self) -> Float[Array, ...]:
        return jnp.sum(self.energy, axis=-1)


def flux_from_transfer(transfer: Float[Array, "*T S+2 S+2"]) -> Float[Array, "*T S+1"]:
    """$\\Pi_{s|s+1} = \\sum_{a \\le s < b'} T_{b'a}$ for s = 0..S (any leading axes)."""
    num = transfer.shape[-1]
    idx = jnp.arange(num)
    boundary = jnp.arange(num - 1)
    below = (idx[None, :] <= boundary[:, None]).astype(transfer.dtype)  # (S+1, a)
    above = (idx[None, :] > boundary[:, None]).astype(transfer.dtype)  # (S+1, b')
    return jnp.einsum("sb,...ba,sa->...s", above, transfer, below)


def antisymmetric_shell_sum(
    pair_matrix: Float[Array, "n n"], member: Float[Array, "n S"]
) -> Float[Array, "S S"]:
    """$\\sum_{k\\in s, j\\in s'} X_{kj}$ for an antisymmetric $X$, with exact cancellation.

    Only the strict upper triangle k < j is summed, and the result is $U - U^T$. Every pair
    (k, j) therefore enters $T_{ss'}$ and $T_{s's}$ as the same float with opposite signs:
    the shell matrix is antisymmetric bit for bit and its diagonal (pairs inside one shell,
    "intra-shell cancellation") is exactly zero, whatever the size of the individual
    $X_{kj}$ (near-degenerate pairs inside a shell have huge $W_{kj}$).
    """
    n = pair_matrix.shape[-1]
    upper = jnp.triu(jnp.ones((n, n), dtype=bool), k=1)
    u = member.T @ jnp.where(upper, pair_matrix, jnp.zeros_like(pair_matrix)) @ member
    return u - u.T


def _shell_budget_single(shells, eigenvalues, coefficients, generator):
    member = shells.membership(eigenvalues)
    energy_modes = coefficients**2
    transfer_modes = 2.0 * generator * jnp.outer(coefficients, coefficients)
    transfer = antisymmetric_shell_sum(transfer_modes, member)
    return ShellBudget(
        energy=member.T @ energy_modes,
        dissipation=member.T @ (2.0 * eigenvalues * energy_modes),
        transfer=transfer,
        flux=flux_from_transfer(transfer),
    )


@eqx.filter_jit
def _shell_budget(shells, eigenvalues, coefficients, generator):
    fn = _shell_budget_single
    for _ in range(eigenvalues.ndim - 1):
        fn = jax.vmap(fn, in_axes=(None, 0, 0, 0))
    return fn(shells, eigenvalues, coefficients, generator)


def shell_budget(
    shells: LogShells,
    eigenvalues: Float[Array, "*T n"],
    coefficients: Float[Array, "*T n"],
    generator: Float[Array, "*T n n"],
) -> ShellBudget:
    """Modewise shell budget from (eigenvalues, coefficients, Kato generator W).

    Mode energy $\\varepsilon_k = c_k^2$, $T_{kj} = 2W_{kj}c_kc_j$ (docs/theory.md §2.3). Any number of
    leading (time, sweep) axes are vmapped; the function is jit-compiled once per shape.

    **Arguments:**
    - `shells`: a `LogShells`.
    - `eigenvalues`, `coefficients`: (..., n), e.g. `KatoSolution.eigenvalues/.coefficients`.
    - `generator`: (..., n, n) antisymmetric $W$, e.g. `KatoSolution.generator`.

    **Returns:** a `ShellBudget` with the same leading axes.

    **Raises:** `ValueError` on mismatched shapes, `TypeError` on non-floating or mixed dtypes.
    """
    eigenvalues, coefficients, generator = map(jnp.asarray, (eigenvalues, coefficients, generator))
    if (
        eigenvalues.ndim < 1
        or eigenvalues.shape != coefficients.shape
        or generator.shape != (*eigenvalues.shape, eigenvalues.shape[-1])
    ):
        raise ValueError(
            "shell_budget: expected eigenvalues (..., n), coefficients (..., n) and generator "
            f"(..., n, n); got {eigenvalues.shape}, {coefficients.shape}, {generator.shape}"
        )
    dtypes = {eigenvalues.dtype, coefficients.dtype, generator.dtype}
    if len(dtypes) != 1 or not jnp.issubdtype(eigenvalues.dtype, jnp.floating):
        raise TypeError(
            "shell_budget: eigenvalues, coefficients and generator must share one floating "
            f"dtype; got {eigenvalues.dtype}, {coefficients.dtype}, {generator.dtype}"
        )
    return _shell_budget(shells, eigenvalues, coefficients, generator)
