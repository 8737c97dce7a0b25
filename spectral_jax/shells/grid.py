"""Logarithmic spectral shells: the grid on the spectrum (docs/theory.md §2.3).

Shell 0 holds $\\lambda > \\lambda_\\text{ref}$; shell s (1 ≤ s ≤ S) holds
$\\lambda_\\text{ref} b^{-s} < \\lambda \\le \\lambda_\\text{ref} b^{-(s-1)}$; shell S+1 (the tail)
holds everything $\\le \\lambda_\\text{ref} b^{-S}$, zero modes included.

The budgets built on this grid are in `shells.budget` (modewise), `shells.projector`
(gauge-free) and `shells.windowed` (over time windows, with eigenvalues crossing edges).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._checks import as_concrete

__all__ = ["LogShells"]


def _scalar(value, name: str):
    """`value` as a 0-d floating array; a clear error for anything else (e.g. a spectrum)."""
    if np.ndim(value) != 0:
        raise ValueError(
            f"LogShells: {name} must be a scalar (0-d), got shape {np.shape(value)}; to cover "
            "a spectrum use LogShells.from_spectrum(eigenvalues, ratio)"
        )
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        if not (jnp.issubdtype(array.dtype, jnp.integer) and array.dtype != jnp.bool_):
            raise TypeError(f"LogShells: {name} must be a real number, got dtype {array.dtype}")
        array = array.astype(jnp.result_type(float))  # float64 under x64, else float32
    return array


class LogShells(eqx.Module):
    """S + 2 logarithmic shells set by `lam_ref`, `ratio` b > 1 and `count` S ≥ 1.

    `lam_ref` and `ratio` are 0-d arrays (Python numbers and NumPy/JAX scalars are accepted;
    a sweep can vmap over them without recompiling); `count` is static (it sets shapes).

    **Raises:** `ValueError` for `count < 1`, a `lam_ref` or `ratio` that is not 0-d, a
    non-positive or non-finite `lam_ref`, or `ratio <= 1` (checked when the values are
    concrete, skipped under `jit`/`vmap`); `TypeError` for a non-real `lam_ref` or `ratio`.
    """

    lam_ref: Float[Array, ""]
    ratio: Float[Array, ""]
    count: int = eqx.field(static=True)

    def __init__(self, lam_ref, ratio, count: int):
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
            raise ValueError(f"LogShells: count must be an integer >= 1, got {count!r}")
        lam_ref, ratio = _scalar(lam_ref, "lam_ref"), _scalar(ratio, "ratio")
        lam_ref_c, ratio_c = as_concrete(lam_ref), as_concrete(ratio)
        if lam_ref_c is not None and not (np.isfinite(lam_ref_c) and lam_ref_c > 0):
            raise ValueError(f"LogShells: lam_ref must be finite and > 0, got {lam_ref_c!r}")
        if ratio_c is not None and not (np.isfinite(ratio_c) and ratio_c > 1):
            raise ValueError(f"LogShells: ratio must be finite and > 1, got {ratio_c!r}")
        self.lam_ref = lam_ref
        self.ratio = ratio
        self.count = int(count)

    @classmethod
    def covering(cls, lam_max, lam_min, ratio, *, margin: float = 1.0) -> LogShells:
        """Shells whose logarithmic range [λ_min, λ_max] fits inside shells 1..S.

        `lam_ref = margin · lam_max` and S the smallest count with
        $\\lambda_\\text{ref} b^{-S} < \\lambda_\\text{min}$ (concrete values only).
        """
        lam_max, lam_min, ratio = float(lam_max), float(lam_min), float(ratio)
        if not (0 < lam_min <= lam_max < np.inf) or not ratio > 1 or not margin >= 1:
            raise ValueError(
                f"LogShells.covering: need 0 < lam_min <= lam_max < inf, ratio > 1, "
                f"margin >= 1; got lam_min={lam_min}, lam_max={lam_max}, ratio={ratio}, "
                f"margin={margin}"
            )
        lam_ref = margin * lam_max
        count = max(1, int(np.floor(np.log(lam_ref / lam_min) / np.log(ratio))) + 1)
        return cls(lam_ref, ratio, count)

    @classmethod
    def from_spectrum(
        cls, eigenvalues, ratio=2.0, *, margin: float = 1.1, floor: float = 1e-12
    ) -> LogShells:
        """Shells covering a recorded spectrum (any shape, e.g. (T, n) along a run).

        `lam_ref = margin · max λ` (with `margin > 1` the top mode is not on an edge and shell
        0 is empty), and shells 1..S reach the smallest eigenvalue above `floor · max λ`
        (smaller ones, zero modes and round-off, fall in the tail shell S+1).
        """
        lam = np.asarray(eigenvalues, np.float64).ravel()
        if lam.size == 0 or not np.all(np.isfinite(lam)):
            raise ValueError("LogShells.from_spectrum: eigenvalues must be finite and non-empty")
        lam_max = float(lam.max())
        if not lam_max > 0:
            raise ValueError(
                f"LogShells.from_spectrum: no positive eigenvalue (max {lam_max!r})"
            )
        resolved = lam[lam > floor * lam_max]
        return cls.covering(lam_max, float(resolved.min()), ratio, margin=margin)

    @property
    def num_shells(self) -> int:
        return self.count + 2

    @property
    def edges(self) -> Float[Array, " faces"]:
        """Upper edges $\\lambda_\\text{ref} b^{-(s-1)}$ of shells s = 1..S+1, descending.

        `edges[j]` separates shell j (above) from shell j+1 (below); an eigenvalue equal to an
        edge belongs to the shell below.
        """
        return self.lam_ref * self.ratio ** -jnp.arange(self.count + 1, dtype=self.lam_ref.dtype)

    @property
    def centers(self) -> Float[Array, " shells"]:
        """Shell centres $\\lambda_s = \\lambda_\\text{ref} b^{-(s-1/2)}$, s = 0..S+1.

        For the open shells 0 and S+1 these are the nominal centres of the same formula.
        """
        s = jnp.arange(self.num_shells, dtype=self.lam_ref.dtype)
        return self.lam_ref * self.ratio ** -(s - 0.5)

    def assign(self, eigenvalues: Float[ArrayLike, "... n"]) -> Int[Array, "... n"]:
        """Shell index of each eigenvalue: the number of upper edges at or above it."""
        edges = self.edges.astype(eigenvalues.dtype).reshape((1,) * eigenvalues.ndim + (-1,))
        return jnp.sum(eigenvalues[..., None] <= edges, axis=-1)

    def membership(self, eigenvalues: Float[ArrayLike, "... n"]) -> Float[Array, "... n shells"]:
        """One-hot (..., n, S+2) matrix of shell membership."""
        return jax.nn.one_hot(self.assign(eigenvalues), self.num_shells, dtype=eigenvalues.dtype)

    def position(self, eigenvalues: Float[ArrayLike, ...]) -> Float[Array, ...]:
        """Continuous shell coordinate $x = \\tfrac12 + \\ln(\\lambda_\\text{ref}/\\lambda)/\\ln b$.

        The centre of shell s sits at x = s and its edges at x = s ± 1/2 (so x is the
        log-spectral coordinate $u/\\ln b + 1/2$ of docs/theory.md §2.5). Inverse: `eigenvalue_at`.
        """
        lam_ref = self.lam_ref.astype(eigenvalues.dtype)
        ratio = self.ratio.astype(eigenvalues.dtype)
        return 0.5 + jnp.log(lam_ref / eigenvalues) / jnp.log(ratio)

    def eigenvalue_at(self, position: Float[ArrayLike, ...]) -> Float[Array, ...]:
        """$\\lambda = \\lambda_\\text{ref} b^{-(x - 1/2)}$, the inverse of `position`."""
        lam_ref = self.lam_ref.astype(position.dtype)
        ratio = self.ratio.astype(position.dtype)
        return lam_ref * ratio ** -(position - 0.5)
