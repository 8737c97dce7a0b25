"""Which diffrax solver integrates what, and why (measured in benchmarks/bench_stiff.py).

Every time integration of the package is a gradient flow: the dissipation $-\\Lambda c$ has
rates up to $\\lambda_{\\max}$, while the dynamics that matter at late times (slow modes, the
moving frontier, slow rotation of the eigenbasis) are orders of magnitude slower. An explicit
solver's step is bounded by $\\sim 3/\\lambda_{\\max}$ however long ago the fast modes decayed,
so its step count grows like $\\lambda_{\\max} t$; an L-stable implicit or IMEX solver's step
follows the slow dynamics only: about $\\log t$ steps while they are smooth, and linear in $t$
again where an eigenbasis keeps rotating (the frame must follow it).

- **Kato system** (`solve_kato`): IMEX `diffrax.KenCarp4`. Implicit part: the coefficients'
  dissipation $-\\mathrm{diag}(\\Phi^T M\\Phi)\\,c$ (diagonal) and the self-check's $-Me$
  (dense, n×n); explicit part: everything else (the frame's rotation and the couplings
  $R^T W R$, which need the `eigh` and are not stiff). The frame never enters the implicit
  part, so no (n²)² Jacobian is formed: see `_jacobian.StructuredJacobianSolver`.
- **Direct** $\\dot e = -M(t)e$ (`solve_direct`): `diffrax.Kvaerno5`, dense n×n Jacobian.
- **Planted chain** (`solve_chain`): `diffrax.Kvaerno5`, tridiagonal Jacobian.
- **Shell model** (`solve_shells`): `diffrax.Kvaerno5` (a few dozen shells: dense is cheap).

Short horizons ($\\lambda_{\\max}\\,\\Delta t$ below `STIFF_HORIZON`) keep the explicit
`diffrax.Tsit5`: there the implicit machinery costs more than the steps it saves.
"""

from __future__ import annotations

import diffrax
import numpy as np
import optimistix as optx

from ._checks import as_concrete
from ._jacobian import JacobianStructure, StructuredJacobianSolver

__all__ = [
    "STIFF_HORIZON",
    "default_solver",
    "implicit_solver",
    "imex_solver",
    "is_imex",
    "is_stiff_horizon",
]

# λ_max·(t1 − t0) from which the stiff-aware solvers are the default. Measured wall-time
# crossover (benchmarks/stiff.md, Kato system, n = 48): at 1e2 Tsit5 0.29 s vs KenCarp4
# 0.76 s, at 1e3 1.32 s vs 1.32 s, at 1e4 12.2 s vs 2.0 s. The planted chain's crossover is
# later (1e4–1e5) with a per-component atol, earlier with an energy-norm atol.
STIFF_HORIZON = 1000.0


def _root_finder(structure):
    # Tolerances follow the step-size controller's, as for diffrax's own defaults. Chord, not
    # diffrax's default VeryChord: VeryChord's contraction estimate is 0/0 when the implicit
    # part is exactly linear (ours are), so it reports failure and every step is rejected
    # (measured with diffrax 0.7.2: KenCarp4 on dc/dt = -λc never gets past t = 1e-5).
    return diffrax.with_stepsize_controller_tols(optx.Chord)(
        linear_solver=StructuredJacobianSolver(structure)
    )


def imex_solver(structure) -> diffrax.KenCarp4:
    """`diffrax.KenCarp4` whose implicit part has the given `JacobianStructure` per leaf."""
    return diffrax.KenCarp4(root_finder=_root_finder(structure))


def implicit_solver(structure) -> diffrax.Kvaerno5:
    """`diffrax.Kvaerno5` whose Jacobian has the given `JacobianStructure` per leaf."""
    return diffrax.Kvaerno5(root_finder=_root_finder(structure))


def is_imex(solver) -> bool:
    """Whether `solver` takes a (explicit, implicit) pair of terms (KenCarp, Sil3)."""
    return getattr(solver, "term_structure", None) is not diffrax.AbstractTerm and isinstance(
        solver, diffrax.AbstractImplicitSolver
    )


def is_stiff_horizon(lam_max: float | None, span: float | None) -> bool:
    """Whether λ_max·span is long enough for the stiff-aware default (False if unknown)."""
    if lam_max is None or span is None:
        return False
    return float(lam_max) * float(span) >= STIFF_HORIZON


def largest_eigenvalue(matrix) -> float | None:
    """λ_max of a concrete symmetric matrix (host, float64); None for a traced one."""
    concrete = as_concrete(matrix)
    if concrete is None:
        return None
    concrete = np.asarray(concrete, dtype=np.float64)
    return float(np.linalg.eigvalsh(0.5 * (concrete + concrete.T))[-1])


def time_span(ts) -> float | None:
    concrete = as_concrete(ts)
    return None if concrete is None else float(concrete[-1] - concrete[0])


def default_solver(solver, stiff_solver, *, lam_max, span):
    """`solver` if given; else `stiff_solver()` over a stiff horizon, `diffrax.Tsit5()` below.

    Under `jit`/`vmap` with traced times or operator the horizon is unknown and the explicit
    solver is used: pass a solver explicitly for traced long runs.
    """
    if solver is not None:
        return solver
    return stiff_solver() if is_stiff_horizon(lam_max, span) else diffrax.Tsit5()


# Re-exported for the solvers' modules.
DIAGONAL, TRIDIAGONAL, DENSE = (
    JacobianStructure.DIAGONAL,
    JacobianStructure.TRIDIAGONAL,
    JacobianStructure.DENSE,
)
