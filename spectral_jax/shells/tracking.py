"""The sorted spectrum of $M(t)$ at given times, without an ODE (docs/theory.md §2.4).

The k-th largest eigenvalue is a continuous function of t whatever happens to the modes, and a
smooth one unless two eigenvalues cross exactly (non-generic: it needs a symmetry; generic
families only have avoided crossings). Shell occupation only depends on the sorted spectrum,
so crossings of shell edges are found on it without tracking modes (tracking by eigenvector
overlap fails when the eigenvectors turn by more than ~45° between saved times, and a swapped
label would look like a crossing).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_times
from ..modes.spectral_state import eigh_descending
from ..operators.base import AbstractOperator
from .grid import LogShells
from .projector import masked_coupling

__all__ = ["SpectralTrack", "track_spectrum"]


class SpectralTrack(eqx.Module):
    """Sorted spectrum of $M(t)$ at saved times.

    - `ts` (T,), `eigenvalues` (T, n) descending, `rates` (T, n): Hellmann–Feynman
      $\\dot\\lambda_k = G_{kk}$ of the k-th largest eigenvalue.
    - `coupling_scale` (T,): $\\max_k\\sum_j|G_{kj}/(\\lambda_k-\\lambda_j)|$, the sum over pairs
      in different shells (over all pairs with distinct eigenvalues when no shells are given):
      how fast the shell projectors turn ($\\le\\|\\dot P_s\\|$). Couplings inside one shell do not
      count: they are huge at an avoided crossing inside a shell, where the shell rates stay
      smooth.
    - `rate_scale` (T,): $\\max_k|\\lambda_k|$ + `coupling_scale`, a bound on how fast the shell
      rates vary ($e$ moves at rate $\\le\\|M\\|$). With `coupling_scale` it sets the quadrature
      piece lengths of `windowed_budget` (`shells.quadrature`).
    """

    ts: Float[Array, " T"]
    eigenvalues: Float[Array, "T n"]
    rates: Float[Array, "T n"]
    coupling_scale: Float[Array, " T"]
    rate_scale: Float[Array, " T"]


def sorted_spectrum(op, t, shells=None):
    """Descending eigenvalues, their Hellmann–Feynman rates and the coupling scale at one time."""
    m, dm = op.value_and_derivative(t)
    lam, frame = eigh_descending(m)
    g = frame.T @ dm @ frame
    g = 0.5 * (g + g.T)
    if shells is None:
        masked = lam[:, None] == lam[None, :]
    else:
        member = shells.membership(lam)
        masked = (member @ member.T) > 0.5
    coupling = masked_coupling(lam, g, masked)
    return lam, jnp.diagonal(g), jnp.max(jnp.sum(jnp.abs(coupling), axis=1))


@eqx.filter_jit
def _track(op, ts, shells):
    lam, rates, coupling = jax.vmap(lambda t: sorted_spectrum(op, t, shells))(ts)
    return SpectralTrack(
        ts=ts,
        eigenvalues=lam,
        rates=rates,
        coupling_scale=coupling,
        rate_scale=jnp.max(jnp.abs(lam), axis=-1) + coupling,
    )


def track_spectrum(
    op: AbstractOperator, ts, *, shells: LogShells | None = None
) -> SpectralTrack:
    """Sorted eigenvalues of `op` at `ts` with their Hellmann–Feynman rates (no ODE).

    `shells` only changes `rate_scale` (inter-shell couplings only, see `SpectralTrack`).

    **Returns:** a `SpectralTrack`.

    **Raises:** `ValueError` when `ts` is not 1-D, finite and strictly increasing.
    """
    ts = jnp.asarray(ts, op.dtype)
    check_times(ts)
    return _track(op, ts, shells)


def track_at(op: AbstractOperator, times, shells: LogShells | None) -> SpectralTrack:
    """`track_spectrum` at any times (unsorted, repeated), padded to a power-of-two length so
    that the compiled tracker is reused while a grid is refined."""
    times = jnp.asarray(times, op.dtype)
    m = times.shape[0]
    size = 1 << max(5, (m - 1).bit_length())
    padded = jnp.concatenate([times, jnp.broadcast_to(times[:1], (size - m,))])
    track = _track(op, padded, shells)
    return jax.tree_util.tree_map(lambda x: x[:m], track)
