"""The shell energy budget of one state, modewise (docs/theory.md §2.3–2.4).

`ShellBudget` holds $E_s$, $D_s$, $T_{ss'}$ and $\\Pi_{s|s+1}$; every budget in the package (the
modewise one here, the projector form in `shells.projector`, the transport chain) assembles it
with `ShellBudget.from_modes`, and every "inflow − outflow" is `net_inflow`.

`shell_budget` is the modewise budget from the Kato quantities (eigenvalues, coefficients $c$,
generator $W$) of `solve_kato`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import as_concrete
from .grid import LogShells

__all__ = [
    "ShellBudget",
    "shell_budget",
    "flux_from_transfer",
    "antisymmetric_shell_sum",
    "net_inflow",
]


def net_inflow(flux: Float[ArrayLike, "*T faces"]) -> Float[Array, "*T faces+1"]:
    """$\\Pi_{s-1|s} - \\Pi_{s|s+1}$ (inflow from above minus outflow below), zero flux at the
    open ends: the energy gained by shell s from the others."""
    zero = jnp.zeros_like(flux[..., :1])
    return jnp.concatenate([zero, flux], axis=-1) - jnp.concatenate([flux, zero], axis=-1)


def flux_from_transfer(
    transfer: Float[ArrayLike, "*T shells shells"],
) -> Float[Array, "*T shells-1"]:
    """$\\Pi_{s|s+1} = \\sum_{a \\le s < b'} T_{b'a}$ for s = 0..S (any leading axes)."""
    num = transfer.shape[-1]
    idx = jnp.arange(num)
    boundary = jnp.arange(num - 1)
    below = (idx[None, :] <= boundary[:, None]).astype(transfer.dtype)  # (S+1, a)
    above = (idx[None, :] > boundary[:, None]).astype(transfer.dtype)  # (S+1, b')
    return jnp.einsum("sb,...ba,sa->...s", above, transfer, below)


def antisymmetric_shell_sum(
    pair_matrix: Float[ArrayLike, "n n"], member: Float[ArrayLike, "n S"]
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


class ShellBudget(eqx.Module):
    """Shell quantities (a leading time axis where the inputs had one).

    - `energy` (S+2,): $E_s = \\sum_{k\\in s}\\varepsilon_k$
    - `dissipation` (S+2,): $D_s = 2\\sum_{k\\in s}\\lambda_k\\varepsilon_k$
    - `transfer` (S+2, S+2): $T_{ss'} = \\sum_{k\\in s, j\\in s'} T_{kj}$, into s from s'
      (exactly antisymmetric, exactly zero diagonal)
    - `flux` (S+1,): $\\Pi_{s|s+1}$, net flux from shells ≤ s into shells > s
    """

    energy: Float[Array, "... shells"]
    dissipation: Float[Array, "... shells"]
    transfer: Float[Array, "... shells shells"]
    flux: Float[Array, "... shells-1"]

    @classmethod
    def from_modes(
        cls,
        member: Float[ArrayLike, "n shells"],
        eigenvalues: Float[ArrayLike, " n"],
        coefficients: Float[ArrayLike, " n"],
        transfer: Float[ArrayLike, "shells shells"],
    ) -> ShellBudget:
        """Energies and dissipations summed over shells from the modes; flux from `transfer`."""
        energy_modes = coefficients**2
        return cls(
            energy=member.T @ energy_modes,
            dissipation=member.T @ (2.0 * eigenvalues * energy_modes),
            transfer=transfer,
            flux=flux_from_transfer(transfer),
        )

    @property
    def net_transfer(self) -> Float[Array, "... shells"]:
        """$\\sum_{s'} T_{ss'}$: energy gained by shell s from all others per unit time."""
        return jnp.sum(self.transfer, axis=-1)

    @property
    def rate(self) -> Float[Array, "... shells"]:
        """$dE_s/dt = -D_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}$ (no edge crossing)."""
        return -self.dissipation + net_inflow(self.flux)

    @property
    def total_energy(self) -> Float[Array, ...]:
        return jnp.sum(self.energy, axis=-1)


def _shell_budget_single(shells, eigenvalues, coefficients, generator):
    member = shells.membership(eigenvalues)
    transfer = antisymmetric_shell_sum(
        2.0 * generator * jnp.outer(coefficients, coefficients), member
    )
    return ShellBudget.from_modes(member, eigenvalues, coefficients, transfer)


@eqx.filter_jit
def _shell_budget(shells, eigenvalues, coefficients, generator):
    fn = _shell_budget_single
    for _ in range(eigenvalues.ndim - 1):
        fn = jax.vmap(fn, in_axes=(None, 0, 0, 0))
    return fn(shells, eigenvalues, coefficients, generator)


def _first_bad(mask: np.ndarray) -> str:
    """The index of the first True entry of `mask`, as text (e.g. "[3, 1]")."""
    return str(list(map(int, np.argwhere(mask)[0])))


def _check_values(eigenvalues, coefficients, generator) -> None:
    """Finite inputs and an antisymmetric generator; skipped for tracers (under jit/vmap)."""
    for name, value in (
        ("eigenvalues", eigenvalues),
        ("coefficients", coefficients),
        ("generator", generator),
    ):
        concrete = as_concrete(value)
        if concrete is not None and not np.all(np.isfinite(concrete)):
            bad = ~np.isfinite(concrete)
            raise ValueError(
                f"shell_budget: {name} contains NaN or Inf (first at index {_first_bad(bad)})"
            )
    w = as_concrete(generator)
    if w is None or w.size == 0:
        return
    asym = np.abs(w + np.swapaxes(w, -1, -2))
    # Round-off relative to the largest entry of each W (near-degenerate pairs make W huge).
    scale = np.max(np.abs(w), axis=(-2, -1), keepdims=True)
    bad = asym > 16 * w.shape[-1] * np.finfo(w.dtype).eps * scale
    if np.any(bad):
        idx = np.argwhere(bad)[0]
        raise ValueError(
            f"shell_budget: generator must be antisymmetric (W = -W^T); at index "
            f"{list(map(int, idx))} |W + W^T| = {float(asym[tuple(idx)]):.3e}"
        )


def shell_budget(
    shells: LogShells,
    eigenvalues: Float[ArrayLike, "*T n"],
    coefficients: Float[ArrayLike, "*T n"],
    generator: Float[ArrayLike, "*T n n"],
) -> ShellBudget:
    """Modewise shell budget from (eigenvalues, coefficients, Kato generator W).

    Mode energy $\\varepsilon_k = c_k^2$, $T_{kj} = 2W_{kj}c_kc_j$ (docs/theory.md §2.3). Any
    number of leading (time, sweep) axes are vmapped; the function is jit-compiled once per
    shape.

    **Arguments:**
    - `shells`: a `LogShells`.
    - `eigenvalues`, `coefficients`: (..., n), e.g. `KatoSolution.eigenvalues/.coefficients`.
    - `generator`: (..., n, n) antisymmetric $W$, e.g. `KatoSolution.generator`.

    **Returns:** a `ShellBudget` with the same leading axes.

    **Raises:** `ValueError` on mismatched shapes, and (for concrete inputs; the checks are
    skipped under `jit`/`vmap`, e.g. inside `solve_kato(..., reduce=...)`) on NaN/Inf entries
    or a generator that is not antisymmetric to round-off; `TypeError` on non-floating or mixed
    dtypes.
    """
    if not isinstance(shells, LogShells):
        raise TypeError(f"shell_budget: shells must be a LogShells, got {type(shells).__name__}")
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
    _check_values(eigenvalues, coefficients, generator)
    return _shell_budget(shells, eigenvalues, coefficients, generator)
