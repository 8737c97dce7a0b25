"""The resolution frontier: where each shell has lost half of its initial energy.

See docs/theory.md §2.6.

At time t the remaining fraction of shell s is $f_s(t) = E_s(t)/E_s(t_0)$. Learning proceeds
from large to small eigenvalues, so $f_s$ is small on the resolved side (small s) and close to
1 on the unresolved side. The frontier position $x(t)$ is the (fractional) shell index where
$f$ crosses 1/2, and $\\lambda^*(t)$ the eigenvalue there.

**Definition used.** Let $s_+$ be the first non-empty shell (from the large-eigenvalue side)
with $f_{s_+} \\ge 1/2$, and $s_-$ the last non-empty shell before it (so $f_{s_-} < 1/2$):
the frontier is the end of the contiguous resolved region. (With transport, $f_s$ need not be
monotone in s: a deep, low-energy shell drained by transport below an unresolved one does not
move the frontier.) Between $s_-$ and $s_+$ the crossing is
interpolated linearly in the variable $z = \\ln(-\\ln f)$ when $0 < f_{s_+} < 1$, and linearly
in $f$ otherwise (a shell that gained energy, $f \\ge 1$). The eigenvalue is
$\\lambda^* = \\lambda_\\text{ref} b^{-(x - 1/2)}$ (integer x is a shell centre).

**Why $z = \\ln(-\\ln f)$.** For a frozen kernel a shell whose modes sit at its centre
$\\lambda_s$ keeps $f_s = e^{-2\\lambda_s t}$, so $z_s = \\ln(2t) + \\ln\\lambda_s$ is exactly
linear in the shell index with slope $-\\ln b$: the interpolation then returns the lazy frontier
$\\lambda^* = \\ln 2/(2t)$ exactly. When the modes of shell s spread over
$(\\lambda_s b^{-1/2}, \\lambda_s b^{1/2}]$, $z_s$ lies within $\\pm\\tfrac12\\ln b$ of that line,
so $|\\ln(2t\\lambda^*/\\ln 2)| \\le \\tfrac12\\ln b$: the lazy frontier is located to within half
a shell, rigorously (used as the test tolerance). Plain linear interpolation in $f$ has no
such guarantee ($f$ is a double exponential in the index).

Where no shell has crossed yet ($f \\ge 1/2$ in the first non-empty shell) or every shell
has ($f < 1/2$ everywhere),
the frontier is outside the spectrum and `shell`/`eigenvalue` are NaN. Empty shells
($E_s(t_0) = 0$) have NaN fraction and are skipped.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .grid import LogShells

__all__ = ["Frontier", "resolution_frontier"]


class Frontier(eqx.Module):
    """Resolution frontier along a run (see the module docstring for the definition).

    - `fraction` (T, S+2): $E_s(t)/E_s(t_0)$, NaN for shells empty at $t_0$.
    - `shell` (T,): fractional shell index x(t) where the fraction crosses 1/2 (NaN outside).
    - `eigenvalue` (T,): $\\lambda^*(t) = \\lambda_\\text{ref} b^{-(x-1/2)}$ (NaN outside).
    """

    fraction: Float[Array, "T shells"]
    shell: Float[Array, " T"]
    eigenvalue: Float[Array, " T"]


def _position(fraction, nonempty):
    num = fraction.shape[-1]
    idx = jnp.arange(num)
    f = jnp.where(nonempty, fraction, jnp.ones_like(fraction))
    unresolved = nonempty & (f >= 0.5)
    s_hi = jnp.min(jnp.where(unresolved, idx, num))
    before = nonempty & (idx < s_hi)
    s_lo = jnp.max(jnp.where(before, idx, -1))
    valid = (s_lo >= 0) & (s_hi < num)
    lo, hi = jnp.clip(s_lo, 0, num - 1), jnp.clip(s_hi, 0, num - 1)
    f_lo, f_hi = f[lo], f[hi]
    tiny = jnp.finfo(f.dtype).tiny
    half = jnp.asarray(0.5, f.dtype)

    def z(x):
        return jnp.log(-jnp.log(jnp.clip(x, tiny, 1.0 - jnp.finfo(f.dtype).eps)))

    use_z = f_hi < 1.0
    num_z, den_z = z(f_lo) - z(half), z(f_lo) - z(f_hi)
    num_f, den_f = half - f_lo, f_hi - f_lo
    numer = jnp.where(use_z, num_z, num_f)
    denom = jnp.where(use_z, den_z, den_f)
    theta = jnp.clip(numer / jnp.where(denom > 0, denom, 1.0), 0.0, 1.0)
    width = (hi - lo).astype(f.dtype)
    x = lo.astype(f.dtype) + theta * width
    return jnp.where(valid, x, jnp.nan)


@eqx.filter_jit
def _frontier(shells, energy):
    e0 = energy[0]
    nonempty = e0 > 0
    safe = jnp.where(nonempty, e0, jnp.ones_like(e0))
    fraction = jnp.where(nonempty[None, :], energy / safe[None, :], jnp.nan)
    position = jax.vmap(_position, in_axes=(0, None))(fraction, nonempty)
    eigenvalue = shells.eigenvalue_at(position)
    return Frontier(fraction=fraction, shell=position, eigenvalue=eigenvalue)


def resolution_frontier(shells: LogShells, energy: Float[ArrayLike, "T shells"]) -> Frontier:
    """Resolution frontier of a run from its shell energies.

    **Arguments:**
    - `shells`: the `LogShells` the energies were computed on.
    - `energy`: (T, S+2) shell energies $E_s(t)$ along a run; row 0 is the reference $t_0$
      (e.g. `shell_budget(...).energy` or `WindowedBudget.energy`).

    **Returns:** a `Frontier` (`fraction`, `shell`, `eigenvalue`).

    **Raises:** `ValueError` if `energy` is not (T, S+2) for these shells.
    """
    energy = jnp.asarray(energy)
    if energy.ndim != 2 or energy.shape[1] != shells.num_shells:
        raise ValueError(
            f"resolution_frontier: energy must be (T, {shells.num_shells}) for these shells, "
            f"got {energy.shape}"
        )
    if not jnp.issubdtype(energy.dtype, jnp.floating):
        raise TypeError(f"resolution_frontier: energy must be floating, got {energy.dtype}")
    return _frontier(shells, energy)
