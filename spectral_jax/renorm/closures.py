"""Power-law transport closures: boundary fluxes from shell energies (docs/theory.md §2.5).

In $u = \\ln(\\lambda_\\text{ref}/\\lambda)$ the energy density obeys
$\\partial_t\\varepsilon = -2\\lambda\\varepsilon - \\partial_u F$ with
$F = v\\,\\varepsilon - D\\,\\partial_u\\varepsilon$,

$$v = -v_0 (\\lambda/\\lambda_\\text{ref})^a (t/t_\\text{ref})^b,\\qquad
D = D_0 (\\lambda/\\lambda_\\text{ref})^a (t/t_\\text{ref})^b.$$

On log shells of ratio r (width $\\Delta u = \\ln r$; the shell *ratio* is never called `b`,
which is the closure's *time exponent*) the boundary flux $\\Pi_{s|s+1}$ is F at the face
between shells s and s+1, in the convention of docs/theory.md §2.4 (net flux from shells ≤ s
into shells > s), so $v_0 > 0$ (transport toward large λ) gives $\\Pi < 0$. The drift's face
density comes from a `Reconstruction` (see `faces.face_density`); diffusion is always central,
$-D_f(E_{s+1} - E_s)/\\Delta u^2$.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .faces import face_density, face_eigenvalues, log_width
from .options import ClosureKind, Reconstruction, as_closure_kind, as_reconstruction

__all__ = ["PowerLawTransport", "closure", "transport_flux"]


def transport_flux(
    energy: Float[ArrayLike, "*T shells"],
    centers: Float[ArrayLike, " shells"],
    t: Float[ArrayLike, "*T"] | float,
    v0,
    space_exponent,
    time_exponent,
    diffusion,
    *,
    lam_ref=1.0,
    t_ref=1.0,
    scheme: Reconstruction | str = Reconstruction.UPWIND,
) -> Float[Array, "*T shells-1"]:
    """Boundary fluxes $\\Pi_{s|s+1}$ of power-law transport (pure function, vmappable).

    **Arguments:**
    - `energy`: (S+2,) shell energies, or (T, S+2) with `t` of shape (T,).
    - `centers`: (S+2,) shell centres $\\lambda_s$ (a geometric sequence, descending).
    - `t`: time(s).
    - `v0`, `space_exponent` (a), `time_exponent` (b), `diffusion` ($D_0$): closure
      parameters (scalars or arrays that broadcast; traced values are fine).
    - `lam_ref`, `t_ref`: the closure's reference scales (independent of the shells, so one
      closure applies to any shell ratio).
    - `scheme`: the drift's face `Reconstruction`.

    **Returns:** the fluxes, shape (S+1,) or (T, S+1).
    """
    scheme = as_reconstruction(scheme)
    energy = jnp.asarray(energy)
    dtype = energy.dtype
    centers = jnp.asarray(centers, dtype)
    t = jnp.asarray(t, dtype)
    du = log_width(centers)
    # Strict promotion: every parameter joins the energy's dtype explicitly.
    v0, a, b, d0, lam_ref, t_ref = (
        jnp.asarray(x, dtype)
        for x in (v0, space_exponent, time_exponent, diffusion, lam_ref, t_ref)
    )
    space_factor = ((face_eigenvalues(centers) / lam_ref) ** a).reshape((1,) * t.ndim + (-1,))
    shape = space_factor * ((t / t_ref) ** b)[..., None]
    velocity = -v0 * shape
    lower, upper = energy[..., :-1], energy[..., 1:]
    density = face_density(lower, upper, du, scheme, from_upper=velocity <= 0)
    return velocity * density - d0 * shape * (upper - lower) / du**2


class PowerLawTransport(eqx.Module):
    """A power-law transport closure; its parameters are arrays so sweeps can vmap over them.

    `v0 = diffusion = 0` is the lazy closure (`ClosureKind.NONE`), `diffusion = 0` the drift
    closure. Build one with `closure(kind, ...)`. Calling it as `closure(energy, centers, t)`
    gives the boundary fluxes, the signature of a user-supplied closure.
    """

    v0: Float[Array, ""]
    space_exponent: Float[Array, ""]
    time_exponent: Float[Array, ""]
    diffusion: Float[Array, ""]
    lam_ref: Float[Array, ""]
    t_ref: Float[Array, ""]
    scheme: Reconstruction = eqx.field(static=True, default=Reconstruction.UPWIND,
                                       converter=as_reconstruction)

    def __call__(self, energy, centers, t):
        return transport_flux(
            energy,
            centers,
            t,
            self.v0,
            self.space_exponent,
            self.time_exponent,
            self.diffusion,
            lam_ref=self.lam_ref,
            t_ref=self.t_ref,
            scheme=self.scheme,
        )

    @property
    def covariant(self):
        """True where $b = a - 1$ (transport respects $t \\to st$, $\\lambda \\to \\lambda/s$)."""
        return jnp.isclose(self.time_exponent, self.space_exponent - 1.0)


def closure(
    kind: ClosureKind | str = ClosureKind.DRIFT,
    *,
    v0=1.0,
    space_exponent=0.5,
    time_exponent=0.0,
    diffusion=0.0,
    lam_ref=1.0,
    t_ref=1.0,
    scheme: Reconstruction | str = Reconstruction.UPWIND,
    dtype=None,
) -> PowerLawTransport:
    """A power-law closure of the given `ClosureKind`.

    **Arguments:** the power-law parameters (floats or arrays; `v0` and `diffusion` are
    ignored for `NONE`, `diffusion` for `DRIFT`), the drift's `Reconstruction` and `dtype`
    (default: the default float type).

    **Raises:** `ValueError`/`TypeError` for an unknown kind or scheme.
    """
    kind = as_closure_kind(kind)
    scheme = as_reconstruction(scheme)
    dtype = jnp.result_type(float) if dtype is None else dtype
    if kind is ClosureKind.NONE:
        v0, diffusion = 0.0, 0.0
    elif kind is ClosureKind.DRIFT:
        diffusion = 0.0
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    return PowerLawTransport(
        cast(v0),
        cast(space_exponent),
        cast(time_exponent),
        cast(diffusion),
        cast(lam_ref),
        cast(t_ref),
        scheme,
    )
