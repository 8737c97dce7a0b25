"""The renormalized shell model: S + 2 shell energies closed by power-law spectral transport.

docs/theory.md §2.5. In the log-spectral coordinate $u = \\ln(\\lambda_\\text{ref}/\\lambda)$ the energy
density obeys

$$\\partial_t\\varepsilon = -2\\lambda\\varepsilon - \\partial_u F,\\qquad
F = v\\,\\varepsilon - D\\,\\partial_u\\varepsilon,$$

$$v = -v_0 (\\lambda/\\lambda_\\text{ref})^a (t/t_\\text{ref})^b,\\qquad
D = D_0 (\\lambda/\\lambda_\\text{ref})^a (t/t_\\text{ref})^b.$$

On log shells of ratio $r$ (width $\\Delta u = \\ln r$; the shell *ratio* is called `ratio`
here and never `b`, which is the closure's *time exponent*) the boundary flux
$\\Pi_{s|s+1}$ is $F$ at the face between shells s and s+1, in the convention of docs/theory.md §2.4
(net flux from shells ≤ s into shells > s), so $v_0 > 0$ (transport toward large λ) gives
$\\Pi < 0$. The shell ODE is

$$\\dot E_s = -2\\lambda_s E_s + \\Pi_{s-1|s} - \\Pi_{s|s+1}.$$

Face values: the face between shells s and s+1 sits at $\\lambda_f = \\sqrt{\\lambda_s
\\lambda_{s+1}}$ (a shell edge); the density there is reconstructed from $E_s/\\Delta u$ and
$E_{s+1}/\\Delta u$ by the scheme:

- `"upwind"` (the default): the shell the drift comes from. First order: on a
  profile $\\varepsilon \\propto e^{-\\sigma u}$ it is off by $(1-e^{-\\sigma\\Delta u})/
  (\\sigma\\Delta u)$ (0.85 at σ = 0.5, ratio 2), a constant factor absorbed into $v_0$.
- `"central"`: the mean of the two shells; off by $\\sinh(\\sigma\\Delta u)/(\\sigma\\Delta u)$
  (1.02 at σ = 0.5, ratio 2).
- `"geometric"`: $\\sqrt{E_sE_{s+1}}/\\Delta u$; off by $2\\sinh(\\sigma\\Delta u/2)/
  (\\sigma\\Delta u)$ (1.005). Exact for the nearest-neighbour transport family of
  `spectral_jax.transport`, whose microscopic face flux is $2w\\,c_kc_{k+1}$. Nonlinear: in the
  ODE it is regularised near $E = 0$.

Diffusion is always central: $-D_f (E_{s+1} - E_s)/\\Delta u^2$.

Dissipation uses one rate per shell, $2\\lambda_s$ at the shell centre by default. On the lazy
power-law initial condition this reproduces $L(t) \\propto t^{-\\sigma}$ up to a log-periodic
ripple of relative size $\\approx 2|\\Gamma(\\sigma + 2\\pi i/\\Delta u)|/\\Gamma(\\sigma)$ (about
$10^{-6}$ at ratio 2) and a prefactor error $2\\sinh(\\sigma\\Delta u/2)/(\\sigma\\Delta u) - 1
\\approx (\\sigma\\Delta u)^2/24$; see `tests/test_renormalized.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import as_concrete, check_times
from ..shells.grid import LogShells

__all__ = [
    "SCHEMES",
    "PowerLawTransport",
    "ShellSolution",
    "closure",
    "face_eigenvalues",
    "solve_shells",
    "transport_flux",
]

SCHEMES = ("upwind", "central", "geometric")
_KINDS = ("none", "drift", "drift+diffusion")


def face_eigenvalues(centers: Float[Array, " S+2"]) -> Float[Array, " S+1"]:
    """$\\lambda_f = \\sqrt{\\lambda_s\\lambda_{s+1}}$: the shell edges, from the centres."""
    centers = jnp.asarray(centers)
    return jnp.sqrt(centers[:-1] * centers[1:])


def _log_width(centers):
    return jnp.log(centers[0] / centers[1])


def transport_flux(
    energy: Float[Array, "*T S+2"],
    centers: Float[Array, " S+2"],
    t: Float[Array, "*T"],
    v0,
    space_exponent,
    time_exponent,
    diffusion,
    *,
    lam_ref=1.0,
    t_ref=1.0,
    scheme: str = "upwind",
) -> Float[Array, "*T S+1"]:
    """Boundary fluxes $\\Pi_{s|s+1}$ of power-law transport (pure function, vmappable).

    **Arguments:**
    - `energy`: (S+2,) shell energies, or (T, S+2) with `t` of shape (T,).
    - `centers`: (S+2,) shell centres $\\lambda_s$ (a geometric sequence, descending).
    - `t`: time(s).
    - `v0`, `space_exponent` (a), `time_exponent` (b), `diffusion` ($D_0$): closure
      parameters (scalars or arrays that broadcast; traced values are fine).
    - `lam_ref`, `t_ref`: the closure's reference scales (independent of the shells, so one
      closure applies to any shell ratio).
    - `scheme`: face reconstruction of the drift, one of `SCHEMES`.

    **Returns:** the fluxes, shape (S+1,) or (T, S+1).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    energy = jnp.asarray(energy)
    dtype = energy.dtype
    centers = jnp.asarray(centers, dtype)
    t = jnp.asarray(t, dtype)
    du = _log_width(centers)
    lam_f = face_eigenvalues(centers)
    # Strict promotion: every parameter joins the energy's dtype explicitly.
    v0, a, b, d0, lam_ref, t_ref = (
        jnp.asarray(x, dtype)
        for x in (v0, space_exponent, time_exponent, diffusion, lam_ref, t_ref)
    )
    time_factor = (t / t_ref) ** b
    space_factor = ((lam_f / lam_ref) ** a).reshape((1,) * t.ndim + (-1,))
    shape = space_factor * time_factor[..., None]
    velocity = -v0 * shape
    lower, upper = energy[..., :-1], energy[..., 1:]
    if scheme == "upwind":
        density = jnp.where(velocity > 0, lower, upper) / du
    elif scheme == "central":
        density = 0.5 * (lower + upper) / du
    else:
        density = _safe_geometric_mean(lower, upper) / du
    return velocity * density - d0 * shape * (upper - lower) / du**2


def _safe_geometric_mean(x, y):
    # sqrt(xy) with a finite derivative at 0 (the ODE's implicit solver differentiates it);
    # the regulariser is far below any energy that matters.
    tiny = jnp.asarray(1e-30, x.dtype)
    return jnp.sqrt(jnp.maximum(x * y, 0.0) + tiny**2) - tiny


class PowerLawTransport(eqx.Module):
    """A power-law transport closure; its parameters are arrays so sweeps can vmap over them.

    `v0 = diffusion = 0` is the lazy closure (`none`), `diffusion = 0` the `drift` closure.
    Build one with `closure(kind, ...)`. Calling it as `closure(energy, centers, t)` gives the
    boundary fluxes, the signature of a user-supplied closure.
    """

    v0: Float[Array, ""]
    space_exponent: Float[Array, ""]
    time_exponent: Float[Array, ""]
    diffusion: Float[Array, ""]
    lam_ref: Float[Array, ""]
    t_ref: Float[Array, ""]
    scheme: str = eqx.field(static=True, default="upwind")

    def __check_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")

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
    kind: str = "drift",
    *,
    v0=1.0,
    space_exponent=0.5,
    time_exponent=0.0,
    diffusion=0.0,
    lam_ref=1.0,
    t_ref=1.0,
    scheme: str = "upwind",
    dtype=None,
) -> PowerLawTransport:
    """A named closure: `"none"` (lazy), `"drift"` or `"drift+diffusion"`.

    **Arguments:** the power-law parameters (floats or arrays; `v0` and `diffusion` are
    ignored for `"none"`, `diffusion` for `"drift"`), `scheme` (see `SCHEMES`) and `dtype`
    (default: the default float type).

    **Raises:** `ValueError` for an unknown kind or scheme.
    """
    if kind not in _KINDS:
        raise ValueError(f"closure kind must be one of {_KINDS}, got {kind!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    if kind == "none":
        v0, diffusion = 0.0, 0.0
    elif kind == "drift":
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


class ShellSolution(eqx.Module):
    """Solution of `solve_shells` at the saved times.

    - `ts` (T,), `energy` (T, S+2), `flux` (T, S+1) ($\\Pi_{s|s+1}$ from the closure),
      `dissipation` (T, S+2) ($r_sE_s$), `centers` (S+2,), `stats`, `result`.
    """

    ts: Float[Array, " T"]
    energy: Float[Array, "T S+2"]
    flux: Float[Array, "T S+1"]
    dissipation: Float[Array, "T S+2"]
    centers: Float[Array, " S+2"]
    stats: dict
    result: diffrax.RESULTS

    @property
    def total(self) -> Float[Array, " T"]:
        """$\\sum_s E_s$ (the loss is this over 2n)."""
        return jnp.sum(self.energy, axis=-1)

    def loss(self, num_samples) -> Float[Array, " T"]:
        """$L = \\sum_s E_s / (2n)$."""
        return self.total / (2 * num_samples)

    @property
    def rate(self) -> Float[Array, "T S+2"]:
        zero = jnp.zeros_like(self.flux[..., :1])
        inflow = jnp.concatenate([zero, self.flux], axis=-1)
        outflow = jnp.concatenate([self.flux, zero], axis=-1)
        return -self.dissipation + inflow - outflow


def _vector_field(t, energy, args):
    closure_fn, centers, rates = args
    flux = closure_fn(energy, centers, t)
    zero = jnp.zeros_like(flux[:1])
    inflow = jnp.concatenate([zero, flux])
    outflow = jnp.concatenate([flux, zero])
    return -rates * energy + inflow - outflow


@eqx.filter_jit
def _solve(closure_fn, centers, rates, e0, ts, solver, controller, dt0, max_steps, throw):
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_vector_field),
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=dt0,
        y0=e0,
        args=(closure_fn, centers, rates),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=throw,
    )
    flux = jax.vmap(lambda e, t: closure_fn(e, centers, t))(sol.ys, sol.ts)
    return sol, flux


def solve_shells(
    closure_fn: PowerLawTransport | Callable | None,
    shells: LogShells | Float[Array, " S+2"],
    e0: Float[Array, " S+2"],
    ts: Float[Array, " T"],
    *,
    rates: Float[Array, " S+2"] | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-14,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    dt0: float | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
) -> ShellSolution:
    """Integrate the renormalized shell ODE $\\dot E = -rE + \\Pi_{s-1|s} - \\Pi_{s|s+1}$.

    **Arguments:**
    - `closure_fn`: a `PowerLawTransport` (see `closure`), any callable
      `(energy (S+2,), centers (S+2,), t) -> flux (S+1,)`, or None (lazy: no flux).
    - `shells`: a `LogShells` or the (S+2,) shell centres.
    - `e0`: (S+2,) initial shell energies.
    - `ts`: (T,) increasing save times; the run goes from `ts[0]` to `ts[-1]`. With a
      negative time exponent the closure is singular at t = 0: start at `ts[0] > 0`.
    - `rates`: (S+2,) dissipation rates $r_s$; default $2\\lambda_s$ at the shell centres.
    - `solver`: default `diffrax.Kvaerno5()` (implicit: shells far above the frontier make the
      system stiff, $2\\lambda_0 t \\gg 1$); `rtol`, `atol` for the default PID controller
      (atol is absolute: scale it to your energies).
    - `throw`: False records a failed solve in `.result` (sweeps).

    **Returns:** a `ShellSolution`.

    Vmappable over the closure's parameters and `e0` (`jax.vmap` over a function that calls
    this; the shapes are static).
    """
    if isinstance(shells, LogShells):
        centers = shells.centers
    else:
        centers = jnp.asarray(shells)
    if centers.ndim != 1 or centers.shape[0] < 3:
        raise ValueError(f"shells: expected (S+2,) centres with S >= 1, got {centers.shape}")
    e0 = jnp.asarray(e0)
    if e0.shape != centers.shape:
        raise ValueError(
            f"e0 must have shape {centers.shape} (one energy per shell), got {e0.shape}"
        )
    if not jnp.issubdtype(e0.dtype, jnp.floating):
        raise TypeError(f"e0 must be floating point, got {e0.dtype}")
    dtype = e0.dtype
    centers = centers.astype(dtype)
    concrete_ts = check_times(ts)
    ts = jnp.asarray(ts, dtype)
    if concrete_ts is not None and concrete_ts.shape[0] < 2:
        raise ValueError("ts must hold at least two times")
    c = as_concrete(centers)
    if c is not None and not (np.all(c > 0) and np.all(np.diff(c) < 0)):
        raise ValueError("shell centres must be positive and strictly decreasing")
    if rates is None:
        rates = 2.0 * centers
    rates = jnp.asarray(rates, dtype)
    if rates.shape != centers.shape:
        raise ValueError(f"rates must have shape {centers.shape}, got {rates.shape}")
    if closure_fn is None:
        closure_fn = closure("none", dtype=dtype)
    elif not callable(closure_fn):
        raise TypeError(f"closure_fn must be callable or None, got {type(closure_fn)}")
    solver = diffrax.Kvaerno5() if solver is None else solver
    if stepsize_controller is None:
        stepsize_controller = diffrax.PIDController(rtol=rtol, atol=atol)
    sol, flux = _solve(
        closure_fn, centers, rates, e0, ts, solver, stepsize_controller, dt0, max_steps, throw
    )
    return ShellSolution(
        ts=sol.ts,
        energy=sol.ys,
        flux=flux,
        dissipation=rates[None, :] * sol.ys,
        centers=centers,
        stats=dict(sol.stats),
        result=sol.result,
    )
