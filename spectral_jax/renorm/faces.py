"""Shell geometry of the renormalized model: centres, faces, face densities, net inflow.

docs/theory.md §2.5. The face between shells s and s+1 sits at the shell edge
$\\lambda_f = \\sqrt{\\lambda_s\\lambda_{s+1}}$; shells have width $\\Delta u = \\ln r$ in
$u = \\ln(\\lambda_\\text{ref}/\\lambda)$. The one place where a face density is rebuilt from
shell energies (`face_density`) and where boundary fluxes become shell rates (`net_inflow`):
the closures, the shell ODE and the closure fit all use these.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import as_concrete
from ..shells.grid import LogShells
from .options import Reconstruction

__all__ = ["face_density", "face_eigenvalues", "log_width", "net_inflow", "shell_centers"]


def shell_centers(shells: LogShells | Float[ArrayLike, " shells"]) -> Float[Array, " shells"]:
    """The (S+2,) shell centres of a `LogShells` or of an array of centres.

    **Raises:** `ValueError` unless they are 1-D with S ≥ 1 and (when concrete) positive,
    strictly decreasing and geometric (log shells of one ratio).
    """
    centers = shells.centers if isinstance(shells, LogShells) else jnp.asarray(shells)
    if centers.ndim != 1 or centers.shape[0] < 3:
        raise ValueError(f"shells: expected (S+2,) centres with S >= 1, got {centers.shape}")
    c = as_concrete(centers)
    if c is not None:
        c = c.astype(np.float64)
        if not (np.all(np.isfinite(c)) and np.all(c > 0) and np.all(np.diff(c) < 0)):
            raise ValueError(f"shell centres must be finite, positive, strictly decreasing: {c}")
        ratios = c[:-1] / c[1:]
        if not np.allclose(ratios, ratios[0], rtol=1e-8):
            raise ValueError(f"shell centres must be geometric (one ratio), got ratios {ratios}")
    return centers


def face_eigenvalues(centers: Float[ArrayLike, " shells"]) -> Float[Array, " shells-1"]:
    """$\\lambda_f = \\sqrt{\\lambda_s\\lambda_{s+1}}$: the shell edges, from the centres."""
    centers = jnp.asarray(centers)
    return jnp.sqrt(centers[:-1] * centers[1:])


def log_width(centers: Float[ArrayLike, " shells"]) -> Float[Array, ""]:
    """$\\Delta u = \\ln(\\lambda_0/\\lambda_1)$, the log-width of a shell."""
    return jnp.log(centers[0] / centers[1])


def _positive(x):
    # Energies can dip below zero at round-off (or in a non-positive scheme): clamp, with a
    # floor far below any energy that matters so that derivatives stay finite at 0.
    return jnp.maximum(x, jnp.asarray(1e-300 if x.dtype == jnp.float64 else 1e-38, x.dtype))


def _geometric_mean(x, y):
    # sqrt(xy) with a finite derivative at 0 (the implicit ODE solver differentiates it).
    tiny = jnp.asarray(1e-30, x.dtype)
    return jnp.sqrt(jnp.maximum(x * y, 0.0) + tiny**2) - tiny


def _exponential_face(x, y):
    """$xy\\ln(x/y)/(x-y)$: the face value of $e^{-\\sigma u}$ with shell integrals x and y.

    Written as $m\\,g(r)$ with $m = \\max(x, y)$, $r = \\min/\\max \\in (0, 1]$ and
    $g(r) = -r\\ln r/(1-r)$; near r = 1 the series $g = r(1 + d/2 + d^2/3 + d^3/4)$,
    $d = 1-r$, avoids the 0/0.
    """
    x, y = _positive(x), _positive(y)
    big, small = jnp.maximum(x, y), jnp.minimum(x, y)
    r = small / big
    d = 1.0 - r
    near = d < 1e-3
    d_safe = jnp.where(near, 1.0, d)
    exact = -r * jnp.log(r) / d_safe
    series = r * (1.0 + d / 2 + d**2 / 3 + d**3 / 4)
    return big * jnp.where(near, series, exact)


def face_density(lower, upper, du, scheme: Reconstruction, *, from_upper):
    """Energy density at the faces from the energies of the shells on either side.

    **Arguments:** `lower` = $E_s$ and `upper` = $E_{s+1}$ (any matching shapes; shell s+1
    is the one of smaller λ), `du` = $\\Delta u$, a `Reconstruction`, and `from_upper` (bool or
    bool array): where the drift comes from shell s+1 (used by `UPWIND` only).
    """
    if scheme is Reconstruction.UPWIND:
        energy = jnp.where(from_upper, upper, lower)
    elif scheme is Reconstruction.CENTRAL:
        energy = 0.5 * (lower + upper)
    elif scheme is Reconstruction.GEOMETRIC:
        energy = _geometric_mean(lower, upper)
    elif scheme is Reconstruction.EXPONENTIAL:
        energy = _exponential_face(lower, upper)
    else:
        raise TypeError(f"scheme must be a Reconstruction, got {scheme!r}")
    return energy / du


def net_inflow(flux: Float[ArrayLike, "*T faces"]) -> Float[Array, "*T faces+1"]:
    """$\\Pi_{s-1|s} - \\Pi_{s|s+1}$, with $\\Pi_{-1|0} = \\Pi_{S+1|S+2} = 0$
    (docs/theory.md §2.4)."""
    zero = jnp.zeros_like(flux[..., :1])
    return jnp.concatenate([zero, flux], axis=-1) - jnp.concatenate([flux, zero], axis=-1)
