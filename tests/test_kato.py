"""The Kato modewise solver against closed forms and independent references.

Oracles: `scipy.linalg.expm` (the rotating power law of docs/theory.md §2.2), `solve_direct` and
`scipy.integrate.solve_ivp(method="DOP853")` (the ambient flow), exponential decay (frozen
operator), a Python counter (right-hand-side evaluations).

Compile-time budget: each distinct (operator class, n, len(ts), tolerances) compiles `solve_kato`
once (~5 s on 2 cores), so the tests below share operator classes and shapes where they can.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from helpers import count_compilations, rel_err as _rel_err

import spectral_jax as sj
from spectral_jax._integrate import integrate, solver_stats

F64_RTOL, F64_ATOL = 1e-9, 1e-12  # solver tolerances used by the float64 checks


def _banded_generator(rng, n, bandwidth, scale):
    b = rng.normal(size=(n, n)) * scale
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= bandwidth
    upper = np.triu(b * band, 1)
    return upper - upper.T


def _tracked(sol):
    """Frames, eigenvalues and coefficients with columns in tracked-label order."""
    inv = np.argsort(np.asarray(sol.order), axis=1)  # sorted position of each label
    frames = np.take_along_axis(np.asarray(sol.frames), inv[:, None, :], axis=2)
    lam = np.take_along_axis(np.asarray(sol.eigenvalues), inv, axis=1)
    c = np.take_along_axis(np.asarray(sol.coefficients), inv, axis=1)
    return frames, lam, c


def _consecutive_overlaps(frames):
    """diag(Φ(t_i)^T Φ(t_{i+1})) for consecutive saved frames, shape (T-1, n)."""
    return np.einsum("tik,tik->tk", frames[:-1], frames[1:])


# ---------------------------------------------------------------------------------------------
# Closed form: the rotating power law (docs/theory.md §2.2)


@pytest.fixture(scope="module")
def rotating_case():
    rng = np.random.default_rng(20240601)
    n = 64
    lam = np.arange(1, n + 1, dtype=np.float64) ** -1.5
    a = _banded_generator(rng, n, bandwidth=3, scale=0.2)
    c0 = rng.normal(size=n)
    ts = np.linspace(0.0, 50.0, 26)
    op = sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a))
    # M(0) = diag(λ) with λ descending, so Φ(0) = I and e(0) = c(0).
    kato = sj.solve_kato(op, jnp.asarray(c0), jnp.asarray(ts), rtol=F64_RTOL, atol=F64_ATOL)
    direct = sj.solve_direct(op, jnp.asarray(c0), jnp.asarray(ts), rtol=F64_RTOL, atol=F64_ATOL)
    exact_c = np.stack([scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0 for t in ts])
    rotations = np.stack([scipy.linalg.expm(a * t) for t in ts])
    return dict(
        lam=lam,
        a=a,
        c0=c0,
        ts=ts,
        op=op,
        kato=kato,
        direct=direct,
        exact_c=exact_c,
        rotations=rotations,
    )


def test_rotating_coefficients_match_expm(rotating_case):
    case = rotating_case
    kato = case["kato"]
    assert kato.succeeded
    # The solver really integrated something non-trivial: energy moved between modes.
    assert _rel_err(case["exact_c"][-1:], case["c0"][None]) > 0.5
    assert _rel_err(kato.coefficients, case["exact_c"]) <= 1e-7


def test_rotating_residuals_match_direct_and_closed_form(rotating_case):
    case = rotating_case
    exact_e = np.einsum("tij,tj->ti", case["rotations"], case["exact_c"])
    assert _rel_err(case["direct"].residuals, exact_e) <= 1e-7
    assert _rel_err(case["kato"].residuals, case["direct"].residuals) <= 1e-7
    np.testing.assert_allclose(case["kato"].loss, case["direct"].loss, rtol=1e-7)


def test_rotating_generator_frame_and_spectrum(rotating_case):
    case = rotating_case
    kato, a = case["kato"], case["a"]
    # Fixed spectrum: no crossing, order is the identity and dλ/dt = 0.
    assert np.all(np.asarray(kato.order) == np.arange(a.shape[0])[None, :])
    np.testing.assert_allclose(
        kato.eigenvalues,
        np.broadcast_to(case["lam"], kato.eigenvalues.shape),
        rtol=1e-12,
        atol=1e-15,
    )
    np.testing.assert_allclose(kato.eigenvalue_rates, 0.0, atol=1e-12)
    # W = −A and Φ = expm(tA) (docs/theory.md §2.2).
    np.testing.assert_allclose(kato.generator, np.broadcast_to(-a, kato.generator.shape), atol=1e-9)
    np.testing.assert_allclose(kato.frames, case["rotations"], atol=1e-9)
    assert kato.degenerate_pairs == []  # smallest relative gap is 4.6e-5 > 1e-6


def test_rotating_stats(rotating_case):
    kato, direct = rotating_case["kato"], rotating_case["direct"]
    for sol in (kato, direct):
        s = sol.stats
        assert s["num_accepted_steps"] > 0
        assert s["num_steps"] == s["num_accepted_steps"] + s["num_rejected_steps"]
        # Tsit5: 7 stages, FSAL (+1 first stage); +2 for the initial step-size probe.
        assert s["rhs_evaluations"] == 6 * s["num_steps"] + 1 + 2


def test_direct_matches_solve_ivp_dop853():
    rng = np.random.default_rng(1)
    n = 5
    b0, b1 = rng.normal(size=(n, n)), 0.5 * rng.normal(size=(n, n))

    def m_np(t):
        b = b0 + t * b1
        return b @ b.T / n

    b0j, b1j = jnp.asarray(b0), jnp.asarray(b1)

    def m_jax(t):
        b = b0j + t * b1j
        return b @ b.T / n

    e0 = rng.normal(size=n)
    ts = np.linspace(0.0, 3.0, 7)
    ref = scipy.integrate.solve_ivp(
        lambda t, e: -m_np(t) @ e,
        (ts[0], ts[-1]),
        e0,
        method="DOP853",
        t_eval=ts,
        rtol=1e-10,
        atol=1e-13,
    )
    assert ref.success
    op = sj.CallableOperator(m_jax)
    direct = sj.solve_direct(op, jnp.asarray(e0), jnp.asarray(ts), rtol=1e-10, atol=1e-13)
    assert _rel_err(direct.residuals, ref.y.T) <= 1e-8
    assert _rel_err(ref.y.T[-1:], e0[None]) > 0.1  # the flow did something


# ---------------------------------------------------------------------------------------------
# Moving eigenvalues, black-box operator


@pytest.fixture(scope="module")
def moving_case():
    rng = np.random.default_rng(7)
    n = 10
    b0 = jnp.asarray(rng.normal(size=(n, n)))
    b1 = jnp.asarray(0.6 * rng.normal(size=(n, n)))
    counter = [0]

    def count(t):
        counter[0] += 1

    def fn(t):  # only a function of t: the solver sees a black box and differentiates it by AD
        jax.debug.callback(count, t)  # counts evaluations (checked against solver stats)
        b = b0 + t * b1
        return b @ b.T / n + 0.05 * jnp.eye(n, dtype=b.dtype)

    op = sj.CallableOperator(fn)
    e0 = jnp.asarray(rng.normal(size=n))
    ts = jnp.linspace(0.0, 2.0, 41)
    calls = {}
    counter[0] = 0
    kato = sj.solve_kato(op, e0, ts, rtol=F64_RTOL, atol=F64_ATOL)
    jax.block_until_ready(kato.coefficients)
    jax.effects_barrier()
    calls["kato"] = counter[0]
    counter[0] = 0
    direct = sj.solve_direct(op, e0, ts, rtol=F64_RTOL, atol=F64_ATOL)
    jax.block_until_ready(direct.residuals)
    jax.effects_barrier()
    calls["direct"] = counter[0]
    return dict(op=op, fn=fn, e0=e0, ts=np.asarray(ts), kato=kato, direct=direct, calls=calls)


def test_moving_eigenvalues_kato_matches_direct(moving_case):
    kato, direct = moving_case["kato"], moving_case["direct"]
    assert kato.succeeded and direct.succeeded
    lam = np.asarray(kato.eigenvalues)
    # The spectrum really moves (otherwise this would be the frozen test).
    assert np.max(np.abs(lam[-1] - lam[0]) / lam[0]) > 0.5
    assert _rel_err(kato.residuals, direct.residuals) <= 1e-6
    # Saved eigenvalues are those of M(t), sorted descending.
    ref = np.stack(
        [np.linalg.eigvalsh(np.asarray(moving_case["fn"](t)))[::-1] for t in moving_case["ts"]]
    )
    np.testing.assert_allclose(lam, ref, rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(lam, axis=1) <= 0)


def test_moving_hellmann_feynman_matches_finite_difference(moving_case):
    fn, ts, kato = moving_case["fn"], moving_case["ts"], moving_case["kato"]
    h = 1e-5

    def eig(t):
        return np.linalg.eigvalsh(np.asarray(fn(jnp.asarray(t))))[::-1]

    fd = np.stack([(eig(t + h) - eig(t - h)) / (2 * h) for t in ts[::5]])
    np.testing.assert_allclose(np.asarray(kato.eigenvalue_rates)[::5], fd, rtol=1e-6, atol=1e-8)


def test_moving_frame_never_flips_sign(moving_case):
    kato = moving_case["kato"]
    frames, _, _ = _tracked(kato)
    overlaps = _consecutive_overlaps(frames)
    assert np.all(overlaps > 0.5), overlaps.min()
    # Columns stay orthonormal, and e = Φ c reproduces the coefficients.
    np.testing.assert_allclose(
        np.einsum("tij,tik->tjk", frames, frames),
        np.broadcast_to(np.eye(frames.shape[1]), frames.shape),
        atol=1e-10,
    )


# ---------------------------------------------------------------------------------------------
# Crossings: a true crossing (block structure) and an avoided one (small coupling)


def _givens(m, i, j, theta):
    c, s = jnp.cos(theta), jnp.sin(theta)
    eye = jnp.eye(m, dtype=theta.dtype)
    return eye.at[i, i].set(c).at[j, j].set(c).at[i, j].set(-s).at[j, i].set(s)


class _CrossingOperator(sj.AbstractOperator):
    """$Q_0 [B(t) \\oplus R(t) D R(t)^T] Q_0^T$: $B$ is 2×2 with diagonal
    $1 \\pm (t - t_*)/2$ and off-diagonal `coupling`; $R$ spins the other block.

    With zero coupling the eigenvalues $1 \\pm (t - t_*)/2$ truly cross at $t_*$ (the blocks
    do not talk); with coupling g the pair has an avoided crossing of gap 2g.
    """

    q0: jax.Array
    rest: jax.Array
    spin: jax.Array
    coupling: jax.Array
    tstar: jax.Array

    def __call__(self, t):
        t = jnp.asarray(t, self.dtype)
        dt = t - self.tstar
        a, b, g = 1.0 + 0.5 * dt, 1.0 - 0.5 * dt, self.coupling
        block = jnp.stack([jnp.stack([a, g]), jnp.stack([g, b])])
        m = self.rest.shape[0]
        # Two Givens rotations at different rates: a smooth orthogonal R(t) on the other block.
        rot = _givens(m, 0, 1, self.spin * t) @ _givens(m, 1, 2, 0.5 * self.spin * t)
        rest = (rot * self.rest[None, :]) @ rot.T
        n = m + 2
        full = jnp.zeros((n, n), self.dtype).at[:2, :2].set(block).at[2:, 2:].set(rest)
        return self.q0 @ full @ self.q0.T

    @property
    def dtype(self):
        return self.q0.dtype


@pytest.fixture(scope="module")
def crossing_setup():
    rng = np.random.default_rng(3)
    n = 6
    q0 = jnp.asarray(np.linalg.qr(rng.normal(size=(n, n)))[0])
    e0 = jnp.asarray(rng.normal(size=n))
    ts = jnp.linspace(0.0, 2.0, 25)  # t_* = 1.1 + 1e-3π is not a saved time

    def make(coupling):
        return _CrossingOperator(
            q0,
            jnp.asarray([2.5, 2.0, 0.2, 0.05]),
            jnp.asarray(0.7),
            jnp.asarray(coupling),
            jnp.asarray(1.1 + 1e-3 * np.pi),
        )

    evaluate = eqx.filter_jit(lambda op, t: op(t))

    def reference(op):
        """The ambient flow by SciPy's DOP853 (an oracle independent of diffrax)."""
        sol = scipy.integrate.solve_ivp(
            lambda t, e: -np.asarray(evaluate(op, t)) @ e,
            (float(ts[0]), float(ts[-1])),
            np.asarray(e0),
            method="DOP853",
            t_eval=np.asarray(ts),
            rtol=1e-11,
            atol=1e-13,
        )
        assert sol.success
        return sol.y.T

    return make, e0, ts, reference


@pytest.mark.slow  # compile-bound, moved out of CI's 15-minute budget
def test_true_crossing(crossing_setup):
    make, e0, ts, reference = crossing_setup
    op = make(0.0)
    kato = sj.solve_kato(op, e0, ts, rtol=F64_RTOL, atol=F64_ATOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, reference(op)) <= 1e-6
    tstar = float(op.tstar)
    # Sorted positions 2 and 3 are the crossing pair; they swap labels once, around t_*.
    crossings = kato.crossings
    assert len(crossings) == 1
    t_before, t_after, labels = crossings[0]
    assert t_before < tstar < t_after and sorted(labels) == [2, 3]
    order = np.asarray(kato.order)
    np.testing.assert_array_equal(order[0], np.arange(6))
    np.testing.assert_array_equal(order[-1], [0, 1, 3, 2, 4, 5])
    # Each tracked label keeps its own straight line through the crossing.
    frames, lam, c = _tracked(kato)
    t = np.asarray(ts)
    np.testing.assert_allclose(lam[:, 2], 1.0 - 0.5 * (t - tstar), atol=1e-10)
    np.testing.assert_allclose(lam[:, 3], 1.0 + 0.5 * (t - tstar), atol=1e-10)
    # Tracked frames and coefficients are continuous (no jump at the swap).
    assert np.all(_consecutive_overlaps(frames) > 0.9)
    # Between the two blocks W vanishes: the crossing pair is not coupled.
    gen = np.asarray(kato.generator)
    inv = np.argsort(order, axis=1)
    w23 = gen[np.arange(len(t)), inv[:, 2], inv[:, 3]]
    np.testing.assert_allclose(w23, 0.0, atol=1e-8)


def test_avoided_crossing(crossing_setup):
    make, e0, ts, reference = crossing_setup
    g = 0.05
    op = make(g)
    kato = sj.solve_kato(op, e0, ts, rtol=F64_RTOL, atol=F64_ATOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, reference(op)) <= 1e-6
    # No crossing: labels stay sorted, the pair follows the two hyperbola branches.
    assert kato.crossings == []
    t = np.asarray(ts)
    half = np.sqrt(0.25 * (t - float(op.tstar)) ** 2 + g**2)
    lam = np.asarray(kato.eigenvalues)
    np.testing.assert_allclose(lam[:, 2], 1.0 + half, atol=1e-10)
    np.testing.assert_allclose(lam[:, 3], 1.0 - half, atol=1e-10)
    # Through the avoided crossing the eigenvectors turn by 90° but never flip sign.
    assert np.all(_consecutive_overlaps(np.asarray(kato.frames)) > 0.0)
    # The generator peaks at the avoided crossing: |W_23| ≈ (1/2)/(2·2g) there.
    w23 = np.abs(np.asarray(kato.generator)[:, 2, 3])
    assert w23.max() > 0.5 * 0.25 / g


# ---------------------------------------------------------------------------------------------
# Frozen operator: exact exponential decay; degenerate spectra


def _psd_with_spectrum(rng, lam):
    q = np.linalg.qr(rng.normal(size=(len(lam), len(lam))))[0]
    m = (q * lam[None, :]) @ q.T
    return 0.5 * (m + m.T)


def test_frozen_operator_exact_decay():
    rng = np.random.default_rng(11)
    lam = np.array([3.0, 1.7, 1.0, 0.5, 0.21, 0.08, 0.01])
    m = _psd_with_spectrum(rng, lam)
    e0 = rng.normal(size=lam.size)
    ts = np.linspace(0.0, 4.0, 9)
    kato = sj.solve_kato(
        sj.FrozenOperator(jnp.asarray(m)),
        jnp.asarray(e0),
        jnp.asarray(ts),
        rtol=F64_RTOL,
        atol=F64_ATOL,
    )
    c = np.asarray(kato.coefficients)
    expected = c[0][None, :] * np.exp(-lam[None, :] * ts[:, None])
    np.testing.assert_allclose(c, expected, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(kato.generator, 0.0, atol=1e-14)
    np.testing.assert_allclose(
        kato.frames, np.broadcast_to(kato.frames[0], kato.frames.shape), atol=1e-13
    )
    # c(0) = Φ^T e(0) in the frame of the sorted eigenvectors.
    np.testing.assert_allclose(np.asarray(kato.frames[0]) @ c[0], e0, atol=1e-12)


def test_frozen_degenerate_spectrum_reports_pairs():
    rng = np.random.default_rng(12)
    lam = np.array([2.0, 1.0, 1.0, 0.5, 0.2, 0.2, 0.2])  # a double and a triple eigenvalue
    m = _psd_with_spectrum(rng, lam)
    e0 = rng.normal(size=lam.size)
    ts = np.linspace(0.0, 3.0, 9)  # same shapes as the decay test: one compilation
    op = sj.FrozenOperator(jnp.asarray(m))
    kato = sj.solve_kato(op, jnp.asarray(e0), jnp.asarray(ts), rtol=F64_RTOL, atol=F64_ATOL)
    direct = sj.solve_direct(op, jnp.asarray(e0), jnp.asarray(ts), rtol=F64_RTOL, atol=F64_ATOL)
    assert kato.succeeded
    pairs = {(k, j) for _, k, j, _ in kato.degenerate_pairs}
    assert pairs == {(1, 2), (4, 5), (5, 6)}
    assert len(kato.degenerate_pairs) == 3 * len(ts)  # met at every saved time
    assert _rel_err(kato.residuals, direct.residuals) <= 1e-8
    exact = scipy.linalg.expm(-m * ts[-1]) @ e0
    np.testing.assert_allclose(kato.residuals[-1], exact, rtol=1e-8, atol=1e-12)


def test_rotating_degenerate_spectrum():
    """A repeated eigenvalue that rotates: parallel transport inside the degenerate pair.

    The frame inside the pair differs from expm(tA) (the Kato gauge is not R's), but the
    residual, and the pair's energy c_1² + c_2² (a projector quantity), are gauge-free.
    """
    rng = np.random.default_rng(13)
    lam = np.array([1.0, 0.5, 0.5, 0.2, 0.05])
    a = _banded_generator(rng, lam.size, bandwidth=4, scale=0.4)
    op = sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a))
    c0 = rng.normal(size=lam.size)
    ts = np.linspace(0.0, 5.0, 11)
    kato = sj.solve_kato(op, jnp.asarray(c0), jnp.asarray(ts), rtol=F64_RTOL, atol=F64_ATOL)
    assert kato.succeeded
    assert {(k, j) for _, k, j, _ in kato.degenerate_pairs} == {(1, 2)}
    exact_c = np.stack([scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0 for t in ts])
    exact_e = np.stack([scipy.linalg.expm(a * t) @ c for t, c in zip(ts, exact_c)])
    assert _rel_err(kato.residuals, exact_e) <= 1e-7  # the closed form is the direct solution
    energies = np.asarray(kato.energies)
    np.testing.assert_allclose(
        energies[:, 1] + energies[:, 2],
        exact_c[:, 1] ** 2 + exact_c[:, 2] ** 2,
        rtol=1e-7,
        atol=1e-12,
    )
    # Non-degenerate modes keep the closed form; the pair gets the parallel-transport gauge.
    for k in (0, 3, 4):
        np.testing.assert_allclose(
            np.abs(np.asarray(kato.coefficients)[:, k]),
            np.abs(exact_c[:, k]),
            rtol=1e-7,
            atol=1e-10,
        )
    np.testing.assert_allclose(np.asarray(kato.generator)[:, 1, 2], 0.0, atol=1e-14)
    frames, _, _ = _tracked(kato)
    assert np.all(_consecutive_overlaps(frames) > 0.0)


# ---------------------------------------------------------------------------------------------
# Right-hand-side evaluation count, against a real counter


def _counting_vector_field(counter):
    def callback(t):
        counter[0] += 1

    def vector_field(t, y, args):
        jax.debug.callback(callback, t)
        return -(1.0 + t) * y

    return vector_field


@pytest.mark.parametrize(
    "solver", [diffrax.Tsit5(), diffrax.Dopri8()], ids=lambda s: type(s).__name__
)
def test_rhs_evaluation_formula_against_counter(solver):
    counter = [0]
    y0, ts = jnp.ones(3), jnp.linspace(0.0, 2.0, 5)
    controller = diffrax.PIDController(rtol=1e-6, atol=1e-9)
    sol = integrate(
        _counting_vector_field(counter),
        y0,
        ts,
        None,
        solver=solver,
        stepsize_controller=controller,
        dt0=None,
        max_steps=10_000,
        throw=True,
    )
    jax.block_until_ready(sol.ys)
    jax.effects_barrier()
    stats = solver_stats(sol, solver, initial_step_guess=True)
    assert stats["num_steps"] > 3
    assert stats["rhs_evaluations"] == counter[0]


def test_solver_rhs_count_end_to_end(moving_case):
    """Operator evaluations counted inside whole `solve_kato` / `solve_direct` calls."""
    calls, kato, direct = moving_case["calls"], moving_case["kato"], moving_case["direct"]
    # + 2: the eager input checks evaluate M at ts[0] and ts[-1].
    assert calls["direct"] == direct.stats["rhs_evaluations"] + 2
    # + 2 eager checks, + 1 initial frame, + len(ts) for the saved spectral states.
    assert calls["kato"] == kato.stats["rhs_evaluations"] + 2 + 1 + len(moving_case["ts"])


def test_failed_solve_is_recorded_not_raised():
    rng = np.random.default_rng(2)
    m = _psd_with_spectrum(rng, np.array([1.0, 0.5, 0.1]))
    op = sj.FrozenOperator(jnp.asarray(m))
    e0, ts = jnp.asarray(rng.normal(size=3)), jnp.linspace(0.0, 5.0, 4)
    sol = sj.solve_kato(op, e0, ts, rtol=1e-10, atol=1e-12, max_steps=3, throw=False,
                        solver=diffrax.Tsit5())  # a frozen operator alone takes the closed form
    assert not sol.succeeded
    assert sol.result == diffrax.RESULTS.max_steps_reached


# ---------------------------------------------------------------------------------------------
# Float32: allowed for speed, with tolerances per dtype


def test_float32_rotating_closed_form():
    rng = np.random.default_rng(21)
    n = 8
    lam = np.arange(1, n + 1, dtype=np.float64) ** -1.5
    a = _banded_generator(rng, n, bandwidth=2, scale=0.3)
    c0 = rng.normal(size=n)
    ts = np.linspace(0.0, 5.0, 6)
    op = sj.RotatingPowerLaw(jnp.asarray(lam, jnp.float32), jnp.asarray(a, jnp.float32))
    e0, ts32 = jnp.asarray(c0, jnp.float32), jnp.asarray(ts, jnp.float32)
    kato = sj.solve_kato(op, e0, ts32)  # default tolerances follow the dtype (1e-5 / 1e-7)
    assert kato.coefficients.dtype == jnp.float32 and kato.generator.dtype == jnp.float32
    assert kato.succeeded and kato.stats["num_steps"] < 200
    exact_c = np.stack([scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0 for t in ts])
    assert _rel_err(kato.coefficients, exact_c) <= 5e-4
    np.testing.assert_allclose(kato.generator, np.broadcast_to(-a, kato.generator.shape), atol=5e-4)


def test_new_tolerances_do_not_recompile():
    """Tolerances are traced values: a sweep over rtol reuses one compiled solve."""
    n = 6
    op = sj.FrozenOperator(jnp.diag(jnp.arange(1.0, n + 1.0)))
    e0, ts = jnp.ones(n), jnp.linspace(0.0, 1.0, 3)
    for solve in (sj.solve_kato, sj.solve_direct):
        solve(op, e0, ts, rtol=1e-6, atol=1e-8)
        with count_compilations() as compiles:
            solve(op, e0, ts, rtol=1e-7, atol=1e-9)
        assert compiles.count == 0, (solve.__name__, compiles.names)


@pytest.mark.slow  # ~20-40 s; CI time budget (make test-all runs it)
def test_near_degenerate_pair_is_transported_as_a_block():
    """A relative gap of 2e-9: block transport stays exact and cheap; modewise is stiff."""
    n = 12
    lam = np.arange(1, n + 1, dtype=np.float64) ** -1.0
    lam[5] = lam[4] * (1 - 2e-9)
    a = sj.banded_generator(n, 2, 0.2, seed=1)
    op = sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a))
    e0 = np.random.default_rng(0).normal(size=n)
    ts = np.linspace(0.0, 10.0, 6)
    exact = np.stack([scipy.linalg.expm(-t * (np.diag(lam) + a)) @ e0 for t in ts])
    exact_residuals = np.stack([scipy.linalg.expm(t * a) @ c for t, c in zip(ts, exact)])

    block = sj.solve_kato(op, jnp.asarray(e0), jnp.asarray(ts), rtol=1e-10, atol=1e-12)
    err = np.linalg.norm(np.asarray(block.residuals) - exact_residuals, axis=1)
    assert np.max(err / np.linalg.norm(exact_residuals, axis=1)) < 1e-8
    # Inside the pair the eigenbasis is gauge-dependent; the pair's energy is not.
    pair = np.asarray(block.coefficients[:, 4] ** 2 + block.coefficients[:, 5] ** 2)
    np.testing.assert_allclose(pair, exact[:, 4] ** 2 + exact[:, 5] ** 2, rtol=1e-8, atol=1e-12)
    # The other modes are individually exact.
    others = [k for k in range(n) if k not in (4, 5)]
    np.testing.assert_allclose(
        np.abs(np.asarray(block.coefficients)[:, others]), np.abs(exact[:, others]),
        rtol=1e-7, atol=1e-10,
    )

    modewise = sj.solve_kato(
        op, jnp.asarray(e0), jnp.asarray(ts), rtol=1e-10, atol=1e-12,
        clusters=sj.Clusters(relative_gap=1e-12),
    )
    assert block.stats["num_steps"] * 10 < modewise.stats["num_steps"]


# Compile-bound: out of CI's 15-minute budget; reduce= stays in CI via test_kato_frozen.py.
@pytest.mark.slow
def test_reduce_keeps_only_the_reduction(rotating_case):
    """`reduce=` computes shell budgets inside the solve and drops the (T, n, n) arrays."""
    import functools

    op, full = rotating_case["op"], rotating_case["kato"]
    e0, ts = jnp.asarray(rotating_case["c0"]), jnp.asarray(rotating_case["ts"])
    shells = sj.LogShells(1.1, 2.0, 6)
    lean = sj.solve_kato(
        op, e0, ts, rtol=F64_RTOL, atol=F64_ATOL, reduce=functools.partial(sj.shell_budget, shells)
    )
    assert lean.generator is None and lean.frames is None
    reference = sj.shell_budget(shells, full.eigenvalues, full.coefficients, full.generator)
    np.testing.assert_allclose(lean.reduced.energy, reference.energy, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lean.reduced.flux, reference.flux, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(lean.residuals, full.residuals, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        full.residuals, np.einsum("tij,tj->ti", full.frames, full.coefficients), atol=1e-13
    )
