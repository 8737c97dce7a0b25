"""A microscopic operator family that realises power-law spectral transport on purpose.

Why it works. Take fixed eigenvalues $\\lambda_1 > \\dots > \\lambda_n$ and eigenvectors rotated
by $R(t) = \\exp(H(t)A_0)$, $H(t) = \\int_0^t h$, with $A_0$ antisymmetric and *tridiagonal*
(nearest-neighbour couplings $A_{0,k,k+1} = w_k$) and $h(t) = (t/t_\\text{ref})^b$. Then
$M(t) = R\\Lambda R^T$ has the Kato frame $\\Phi = R$ and generator $W = -h(t)A_0$ exactly
(docs/theory.md §2.2, with a scalar time modulation that commutes with itself), and the
modewise ODE is

$$\\dot c_k = -\\lambda_k c_k - h\\,(w_k c_{k+1} - w_{k-1} c_{k-1}).$$

The energy crossing the face between modes k and k+1 (toward smaller λ) is exactly
$2hw_kc_kc_{k+1}$. For a sign-coherent, smooth coefficient profile (every $c_k$ of one sign,
as for a target aligned with the kernel) this is a conservation law
$\\partial_t\\varepsilon_k = -2\\lambda_k\\varepsilon_k - \\partial_k(2hw\\,\\varepsilon)$ up to
dispersive $O(\\partial_k^2)$ terms. In $u = \\ln(\\lambda_\\text{ref}/\\lambda)$ the density is
$\\varepsilon_k/\\delta u_k$ with $\\delta u_k = \\ln(\\lambda_k/\\lambda_{k+1})$, so the face
flux is
$v\\,\\varepsilon_u$ with $v = 2hw_k/\\delta u_k$. Choosing

$$w_k = \\frac{v(\\lambda_f)}{2\\,\\delta u_k},\\quad \\lambda_f = \\sqrt{\\lambda_k\\lambda_{k+1}},
\\quad v(\\lambda) = -v_0 (\\lambda/\\lambda_\\text{ref})^a$$

plants the drift closure $(v_0, a, b, D_0 = 0)$ of docs/theory.md §2.5 exactly at the level of the
continuum equation. What it does *not* plant: a random-sign profile gives fluxes of random sign
(no net drift), and where the profile is steep on the scale of one mode (the top few modes,
the dissipative front) the chain is discrete and dispersive, not a continuum drift.

Two ways to get the microscopic dynamics: `solve_kato(family.operator(), e0, ts)` (the generic
engine: one `eigh` per step; n up to a few hundred) and `solve_chain(family, c0, ts)` (the same
Kato ODE with the closed-form frame, O(n) per step: n of 10⁴–10⁵ for exponent measurements).
The two agree (tests/test_closure_fit.py).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import as_concrete, check_times
from .._integrate import default_controller, integrate, solver_stats, uses_initial_step_guess
from .._solvers import TRIDIAGONAL, default_solver, implicit_solver, time_span
from ..shells.budget import ShellBudget, flux_from_transfer
from ..shells.grid import LogShells
from .chain_operator import TransportChainOperator
from .closures import PowerLawTransport, closure
from .options import ClosureKind
from .shell_model import shell_loss
from .velocities import PowerLawVelocity

__all__ = [
    "ChainRun",
    "TransportChain",
    "TransportChainOperator",
    "chain_from_velocity",
    "chain_shell_budget",
    "power_law_transport",
    "solve_chain",
]


class TransportChain(eqx.Module):
    """Fixed spectrum, nearest-neighbour rotation generator, time modulation $(t/t_\\text{ref})^b$.

    - `eigenvalues` (n,): strictly decreasing, positive.
    - `couplings` (n-1,): $w_k = A_{0,k,k+1}$.
    - `time_exponent` b (> -1), `t_ref`.
    - `planted`: the drift closure this chain realises (for a chain built by
      `power_law_transport`; None otherwise).
    """

    eigenvalues: Float[Array, " n"]
    couplings: Float[Array, " n-1"]
    time_exponent: Float[Array, ""]
    t_ref: Float[Array, ""]
    planted: PowerLawTransport | None = None

    def modulation(self, t):
        """$h(t) = (t/t_\\text{ref})^b$."""
        t = jnp.asarray(t, self.eigenvalues.dtype)
        return (t / self.t_ref) ** self.time_exponent

    def phase(self, t):
        """$H(t) = \\int_0^t h = t_\\text{ref}(t/t_\\text{ref})^{b+1}/(b+1)$."""
        t = jnp.asarray(t, self.eigenvalues.dtype)
        b1 = self.time_exponent + 1.0
        return self.t_ref * (t / self.t_ref) ** b1 / b1

    def generator_matrix(self) -> Float[Array, "n n"]:
        """Dense antisymmetric $A_0$."""
        return jnp.diag(self.couplings, 1) - jnp.diag(self.couplings, -1)

    def operator(self) -> TransportChainOperator:
        """$M(t) = R(t)\\Lambda R(t)^T$ as an operator for `solve_kato`."""
        return TransportChainOperator(self)

    def kato_generator(self, t) -> Float[Array, "n n"]:
        """The exact Kato generator $W(t) = -h(t)A_0$ (modes in descending order)."""
        return -self.modulation(t) * self.generator_matrix()


def power_law_transport(
    n: int,
    *,
    alpha: float,
    v0: float,
    space_exponent: float,
    time_exponent: float = 0.0,
    lam_max: float = 1.0,
    lam_ref: float = 1.0,
    t_ref: float = 1.0,
    dtype=None,
) -> TransportChain:
    """The chain with $\\lambda_k = \\lambda_\\max k^{-\\alpha}$ that plants drift $(v_0, a, b)$.

    **Arguments:** `n` modes, spectral exponent `alpha` (of the eigenvalues; the name is kept
    for compatibility, elsewhere in `renorm` it is `spectral_exponent`), planted drift
    amplitude `v0` (> 0: toward large λ), `space_exponent` a, `time_exponent` b (> -1),
    reference scales.

    **Returns:** a `TransportChain` whose `.planted` is the planted drift closure.

    **Raises:** `ValueError` for n < 2, alpha <= 0 or b <= -1.
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    k = np.arange(1, n + 1, dtype=np.float64)
    return chain_from_velocity(
        jnp.asarray(lam_max * k**-alpha, dtype),
        PowerLawVelocity(v0, space_exponent, lam_ref),
        time_exponent=time_exponent,
        t_ref=t_ref,
    )


def chain_from_velocity(
    eigenvalues, velocity, *, time_exponent=0.0, t_ref=1.0
) -> TransportChain:
    """The chain on a strictly decreasing positive spectrum that realises the drift
    $v(\\lambda)(t/t_\\text{ref})^b$ for any velocity profile (a callable of the face
    eigenvalues, negative toward large λ; e.g. the profiles of `renorm.velocities`).

    `.planted` is the drift closure for a `PowerLawVelocity`, None for any other profile.

    **Raises:** `ValueError` for a bad spectrum, b <= -1 or a non-finite velocity.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2 or np.any(lam <= 0) or np.any(np.diff(lam) >= 0):
        raise ValueError("eigenvalues must be 1-D (n >= 2), positive and strictly decreasing")
    if not time_exponent > -1:
        raise ValueError(f"time_exponent must be > -1 (integrable modulation), got {time_exponent}")
    if not callable(velocity):
        raise TypeError(f"velocity must be a callable of the eigenvalue, got {type(velocity)}")
    dtype = jnp.asarray(eigenvalues).dtype
    lam_f = np.sqrt(lam[:-1] * lam[1:])
    v = np.asarray(velocity(lam_f), dtype=np.float64)
    if v.shape != lam_f.shape or not np.all(np.isfinite(v)):
        raise ValueError(f"velocity must give {lam_f.shape[0]} finite values at the faces")
    couplings = v / (2.0 * np.log(lam[:-1] / lam[1:]))
    planted = None
    if isinstance(velocity, PowerLawVelocity):
        planted = closure(ClosureKind.DRIFT, v0=velocity.v0, space_exponent=velocity.space_exponent,
                          time_exponent=time_exponent, lam_ref=velocity.lam_ref, t_ref=t_ref,
                          dtype=dtype)
    return TransportChain(
        jnp.asarray(lam, dtype),
        jnp.asarray(couplings, dtype),
        jnp.asarray(time_exponent, dtype),
        jnp.asarray(t_ref, dtype),
        planted,
    )


class ChainRun(eqx.Module):
    """Modewise solution of a `TransportChain` at the saved times.

    - `ts` (T,), `eigenvalues` (n,) (fixed), `coefficients` (T, n) in the Kato frame,
      `couplings` (T, n-1): the generator's super-diagonal $W_{k,k+1} = -h(t)w_k$.
    """

    ts: Float[Array, " T"]
    eigenvalues: Float[Array, " n"]
    coefficients: Float[Array, "T n"]
    couplings: Float[Array, "T n-1"]
    stats: dict
    result: diffrax.RESULTS

    @property
    def energies(self):
        return self.coefficients**2

    @property
    def loss(self):
        """$L = \\sum_k c_k^2/(2n)$ (T,)."""
        return shell_loss(self.energies, self.coefficients.shape[-1])

    @property
    def succeeded(self):
        return self.result == diffrax.RESULTS.successful

    def shell_budget(self, shells: LogShells) -> ShellBudget:
        """The shell budget, same values as `shell_budget` with the dense generator."""
        return chain_shell_budget(shells, self.eigenvalues, self.coefficients, self.couplings)


def _chain_field(t, c, args):
    chain = args
    w = chain.couplings
    right = jnp.concatenate([w * c[1:], jnp.zeros_like(c[:1])])  # w_k c_{k+1}
    left = jnp.concatenate([jnp.zeros_like(c[:1]), w * c[:-1]])  # w_{k-1} c_{k-1}
    return -chain.eigenvalues * c - chain.modulation(t) * (right - left)


@eqx.filter_jit
def _solve_chain(chain, c0, ts, solver, controller, dt0, max_steps, throw):
    return integrate(
        _chain_field,
        c0,
        ts,
        chain,
        solver=solver,
        stepsize_controller=controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
    )


def solve_chain(
    chain: TransportChain,
    c0: Float[ArrayLike, " n"],
    ts: Float[ArrayLike, " T"],
    *,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    solver: diffrax.AbstractSolver | None = None,
    dt0: float | None = None,
    max_steps: int = 1_000_000,
    throw: bool = True,
) -> ChainRun:
    """The exact Kato modewise ODE of a `TransportChain`, O(n) per step.

    Since the frame $R(t)$ and generator $-h(t)A_0$ are known in closed form, this is
    $\\dot c = -\\Lambda c - h(t)A_0c$ with a tridiagonal $A_0$. At $t_0 = $ `ts[0]` the
    coefficients are `c0` (at $t_0 = 0$, $R = I$ and $c = e$).

    **Arguments:** `chain`, `c0` (n,), `ts` (T,) increasing; tolerances of the default PID
    controller, `solver` (default: `diffrax.Tsit5()` for short horizons, `diffrax.Kvaerno5`
    with the tridiagonal Jacobian from $\\lambda_1 (t_\\text{end}-t_0) \\ge$ `STIFF_HORIZON`).

    **Returns:** a `ChainRun`.
    """
    c0 = jnp.asarray(c0)
    n = chain.eigenvalues.shape[0]
    if c0.shape != (n,):
        raise ValueError(f"c0 must have shape ({n},), got {c0.shape}")
    if c0.dtype != chain.eigenvalues.dtype:
        raise TypeError(f"dtype mix: c0 is {c0.dtype}, chain is {chain.eigenvalues.dtype}")
    check_times(ts)
    ts = jnp.asarray(ts, c0.dtype)
    # Long horizons: Kvaerno5 with the tridiagonal Jacobian -Λ - h(t)A0 (spectral_jax/_solvers.py).
    eigenvalues = as_concrete(chain.eigenvalues)  # None under jit/vmap: explicit default
    solver = default_solver(
        solver, lambda: implicit_solver(TRIDIAGONAL), span=time_span(ts),
        lam_max=None if eigenvalues is None else float(np.max(eigenvalues)),
    )
    controller = default_controller(rtol, atol, dtype=c0.dtype)
    sol = _solve_chain(chain, c0, ts, solver, controller, dt0, max_steps, throw)
    guess = uses_initial_step_guess(solver, controller, dt0, ts.shape[0])
    couplings = -jax.vmap(chain.modulation)(sol.ts)[:, None] * chain.couplings[None, :]
    return ChainRun(
        ts=sol.ts,
        eigenvalues=chain.eigenvalues,
        coefficients=sol.ys,
        couplings=couplings,
        stats=solver_stats(sol, solver, initial_step_guess=guess),
        result=sol.result,
    )


def _chain_budget_single(shells, eigenvalues, coefficients, couplings):
    member = shells.membership(eigenvalues)  # (n, S+2)
    energy_modes = coefficients**2
    # T_{k,k+1} = 2 W_{k,k+1} c_k c_{k+1} flows into k from k+1; T_{k+1,k} is its negative.
    into_upper = 2.0 * couplings * coefficients[:-1] * coefficients[1:]
    upper, lower = member[:-1], member[1:]
    transfer = jnp.einsum("f,fs,fr->sr", into_upper, upper, lower)
    transfer = transfer - transfer.T
    return ShellBudget(
        energy=member.T @ energy_modes,
        dissipation=member.T @ (2.0 * eigenvalues * energy_modes),
        transfer=transfer,
        flux=flux_from_transfer(transfer),
    )


@eqx.filter_jit
def chain_shell_budget(
    shells: LogShells,
    eigenvalues: Float[ArrayLike, " n"],
    coefficients: Float[ArrayLike, "*T n"],
    couplings: Float[ArrayLike, "*T n-1"],
) -> ShellBudget:
    """`shell_budget` for a tridiagonal generator given by its super-diagonal $W_{k,k+1}$.

    Same result as `spectral_jax.shell_budget(shells, λ, c, W)` with the dense W, in O(n·S)
    memory per time instead of O(n²). Accepts a leading time axis on `coefficients` and
    `couplings` (eigenvalues fixed).
    """
    if coefficients.ndim == 1:
        return _chain_budget_single(shells, eigenvalues, coefficients, couplings)
    return jax.vmap(_chain_budget_single, in_axes=(None, None, 0, 0))(
        shells, eigenvalues, coefficients, couplings
    )
