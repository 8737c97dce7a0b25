"""`frozen_kernel_gain`: the per-mode integral of a frozen kernel, and its two limits."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from spectral_jax.networks import frozen_kernel_gain


def test_gain_is_the_integral_of_the_mode_decay():
    lam = np.array([3.0, 1e-3, 1e-9])
    times = np.array([0.0, 0.1, 10.0, 1e4])
    gain = np.asarray(frozen_kernel_gain(jnp.asarray(lam), jnp.asarray(times)))
    assert gain.shape == (4, 3)
    for i, t in enumerate(times):
        for k, rate in enumerate(lam):
            integral, _ = scipy.integrate.quad(lambda s, r=rate: np.exp(-r * s), 0.0, t,
                                               epsabs=0.0, epsrel=1e-13, limit=200)
            assert gain[i, k] == pytest.approx(integral, rel=1e-10, abs=1e-300)


def test_zero_modes_and_the_converged_limit():
    lam = jnp.asarray([2.0, 0.5, 1e-14, 0.0, -1e-16])
    finite = np.asarray(frozen_kernel_gain(lam, 3.0, zero_tolerance=1e-12))
    assert finite.shape == (5,)
    np.testing.assert_allclose(finite[:2], -np.expm1(-np.array([2.0, 0.5]) * 3.0) / [2.0, 0.5])
    np.testing.assert_array_equal(finite[2:], 3.0)  # a zero mode integrates e^0 = 1
    converged = np.asarray(frozen_kernel_gain(lam, jnp.inf, zero_tolerance=1e-12))
    np.testing.assert_allclose(converged[:2], [0.5, 2.0], rtol=1e-15)
    np.testing.assert_array_equal(converged[2:], 0.0)  # pseudo-inverse, not 1/λ
    # Without a tolerance only non-positive eigenvalues are zero modes.
    assert float(frozen_kernel_gain(lam, jnp.inf)[2]) == pytest.approx(1e14)


def test_converged_gain_is_kernel_regression(rng):
    """t = ∞: the frozen-kernel prediction is min-norm kernel regression K* K⁺ y, also for a
    rank-deficient kernel (random features, p < n): compared with NumPy's pinv."""
    n, p, m = 12, 5, 4
    z, z_test = rng.normal(size=(n, p)), rng.normal(size=(m, p))
    y = rng.normal(size=n)
    k, k_test = z @ z.T, z_test @ z.T
    lam, phi = np.linalg.eigh(k / n)
    gain = np.asarray(frozen_kernel_gain(jnp.asarray(lam), jnp.inf, zero_tolerance=1e-10))
    pred = k_test @ phi @ (gain / n * (phi.T @ y))  # f_0 = 0, e(0) = -y
    expected = k_test @ np.linalg.pinv(k, rcond=1e-10) @ y
    np.testing.assert_allclose(pred, expected, rtol=1e-9)
