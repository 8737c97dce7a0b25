"""NTK-parameterised models and the power-law teacher data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from spectral_jax import fit_power_law
from spectral_jax.networks import (
    MLP,
    NTKImplementation,
    RandomFeatures,
    ResidualMLP,
    empirical_ntk,
    from_nnx,
    load_digits_data,
    num_params,
    power_law_teacher,
)

F64 = dict(param_dtype=jnp.float64)


def test_shapes_and_parameter_counts():
    x = jnp.ones((5, 3), jnp.float64)
    mlp = MLP(3, 8, 2, rngs=nnx.Rngs(0), **F64)
    res = ResidualMLP(3, 8, 2, rngs=nnx.Rngs(0), **F64)
    rf = RandomFeatures(3, 10, rngs=nnx.Rngs(0), **F64)
    for model in (mlp, res, rf):
        out = model(x)
        assert out.shape == (5,) and out.dtype == jnp.float64
    assert num_params(from_nnx(mlp)[1]) == (3 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    assert num_params(from_nnx(res)[1]) == (3 * 8 + 8) + 4 * (8 * 8 + 8) + (8 + 1)
    assert num_params(from_nnx(rf)[1]) == 10
    with pytest.raises(ValueError, match="expected inputs"):
        mlp(jnp.ones((5, 4), jnp.float64))
    with pytest.raises(ValueError, match="depth"):
        MLP(3, 8, 0, rngs=nnx.Rngs(0))


def test_ntk_parameterisation_has_a_width_limit():
    """In NTK parameterisation the eNTK converges as width grows (standard parameterisation
    would grow linearly with width): two independent draws at width 2048 agree to a few %,
    and width 64 and 2048 agree on the scale."""
    x = jax.random.normal(jax.random.key(0), (4, 3), jnp.float64)

    def kernel(width, seed):
        f, p = from_nnx(MLP(3, width, 2, rngs=nnx.Rngs(seed), **F64))
        return np.asarray(empirical_ntk(f, p, x, implementation=NTKImplementation.STRUCTURED))

    wide_a, wide_b, narrow = kernel(2048, 1), kernel(2048, 2), kernel(64, 3)
    scale = np.abs(wide_a).max()
    assert np.abs(wide_a - wide_b).max() / scale < 0.1
    assert 0.5 < np.abs(narrow).max() / scale < 2.0


def test_residual_branch_scale_and_random_features_frozen():
    res = ResidualMLP(3, 8, 4, rngs=nnx.Rngs(0), **F64)
    assert res.branch_scale == pytest.approx(0.5)
    rf = RandomFeatures(3, 10, rngs=nnx.Rngs(0), **F64)
    apply_fn, params = from_nnx(rf)
    # The frozen feature weights are outside params, so the eNTK does not move in training.
    leaves = jax.tree.leaves(params)
    assert [leaf.shape for leaf in leaves] == [(10, 1)]


def test_power_law_teacher_spectra():
    nu, beta, d = 1.5, 2.5, 16
    data = power_law_teacher(
        jax.random.key(1), 40000, 10, d, input_exponent=nu, target_exponent=beta,
        rotate=True, dtype=jnp.float64,
    )
    x, y = np.asarray(data.x_train), np.asarray(data.y_train)
    # Empirical covariance eigenvalues fall as k^-ν.
    cov = x.T @ x / x.shape[0]
    lam, vec = np.linalg.eigh(cov)
    lam, vec = lam[::-1], vec[:, ::-1]
    k = np.arange(1, d + 1, dtype=np.float64)
    fit = fit_power_law(k, lam)
    assert abs(fit.exponent - nu) < 0.05  # decay exponent: λ_k ∝ k^-ν
    np.testing.assert_allclose(lam, np.asarray(data.eigenvalues), rtol=0.05)
    # Target energy in the (empirical) kernel eigenbasis of the linear kernel falls as k^-β.
    energy = (vec.T @ (x.T @ y) / x.shape[0]) ** 2 / lam  # (φ_k·E[x y])² / λ_k = w_k² λ_k
    fit = fit_power_law(k, energy)
    assert abs(fit.exponent - beta) < 0.1
    assert abs(np.mean(y**2) - 1.0) < 0.05  # normalised teacher


def test_power_law_teacher_noise_and_errors():
    clean = power_law_teacher(jax.random.key(2), 20000, 5, 8, dtype=jnp.float64)
    noisy = power_law_teacher(jax.random.key(2), 20000, 5, 8, noise_std=0.5, dtype=jnp.float64)
    np.testing.assert_array_equal(np.asarray(clean.x_train), np.asarray(noisy.x_train))
    residual = np.asarray(noisy.y_train - clean.y_train)
    assert abs(residual.std() - 0.5) < 0.02
    with pytest.raises(ValueError, match="noise_std"):
        power_law_teacher(jax.random.key(0), 4, 4, 4, noise_std=-1.0)
    with pytest.raises(ValueError, match="n_train"):
        power_law_teacher(jax.random.key(0), 0, 4, 4)


def test_digits_optional():
    pytest.importorskip("sklearn")
    data = load_digits_data(100, 50, dtype=jnp.float64)
    assert data.x_train.shape == (100, 64) and data.y_test.shape == (50,)
    assert set(np.unique(np.asarray(data.y_train))) <= {-1.0, 1.0}
    np.testing.assert_allclose(np.asarray(data.x_train).mean(axis=0), 0.0, atol=1e-12)
