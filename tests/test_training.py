"""Recorded training runs: network residual vs the Kato solution, exact dM/dt, lazy limit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from helpers import FD_STEPS, T_CENTER, mlp_run, random_features_run, teacher_data

import spectral_jax as sj
from spectral_jax.networks import (
    MLP,
    NTKImplementation,
    TrainingConfig,
    TrainingMethod,
    from_nnx,
    gradient_flow,
    log_steps,
    log_times,
    record_trajectory,
    train_optax,
)


def _index(ts, t):
    i = int(np.argmin(np.abs(ts - t)))
    assert abs(ts[i] - t) < 1e-12
    return i


def test_record_contents():
    apply_fn, params, record = mlp_run()
    data = teacher_data()
    T, n = record.ts.shape[0], 12
    assert record.method is TrainingMethod.GRADIENT_FLOW and record.output_scale == 1.0
    assert record.residuals.shape == (T, n)
    assert record.kernels.shape == record.kernel_derivatives.shape == (T, n, n)
    assert record.test_kernels.shape == (T, 8, n) and record.test_predictions.shape == (T, 8)
    # At t=0 the centred output vanishes: e(0) = -y and no test prediction yet.
    np.testing.assert_allclose(np.asarray(record.residuals[0]), -np.asarray(data.y_train))
    np.testing.assert_allclose(np.asarray(record.test_predictions[0]), 0.0, atol=1e-15)
    # Recorded kernels are M = K/n, with the spectrum descending.
    k0 = sj.empirical_ntk(apply_fn, params, data.x_train)
    np.testing.assert_allclose(np.asarray(record.kernels[0]), np.asarray(k0) / n, rtol=1e-12)
    lam = np.asarray(record.eigenvalues)
    assert np.all(np.diff(lam, axis=1) <= 0)
    assert np.all(np.diff(np.asarray(record.loss)) < 0)  # gradient flow decreases the loss
    # The saved parameters reproduce the recorded residuals.
    theta = jax.tree.map(lambda leaf: leaf[-1], record.params)
    e_last = apply_fn(theta, data.x_train) - apply_fn(params, data.x_train) - data.y_train
    np.testing.assert_allclose(np.asarray(e_last), np.asarray(record.residuals[-1]), atol=1e-13)


def test_network_residual_matches_kato_on_recorded_operator():
    _, _, record = mlp_run()
    kato = sj.solve_kato(record.operator(), record.residuals[0], record.ts, rtol=1e-10, atol=1e-12)
    err = np.linalg.norm(np.asarray(kato.residuals - record.residuals), axis=1)
    rel = err / np.linalg.norm(np.asarray(record.residuals), axis=1)
    assert rel.max() <= 1e-4
    # The kernel really moved (this is not the lazy case in disguise).
    change = np.linalg.norm(np.asarray(record.kernels[-1] - record.kernels[0]))
    assert change / np.linalg.norm(np.asarray(record.kernels[0])) > 0.1


def test_ad_derivative_matches_central_differences_of_recorded_kernels():
    """(M(t+h) - M(t-h))/2h - dM/dt = O(h²): the error drops 4× per halving of h."""
    _, _, record = mlp_run()
    ts = np.asarray(record.ts)
    dm = np.asarray(record.kernel_derivatives[_index(ts, T_CENTER)])
    errors = []
    for h in FD_STEPS:
        up, down = _index(ts, T_CENTER + h), _index(ts, T_CENTER - h)
        fd = (np.asarray(record.kernels[up]) - np.asarray(record.kernels[down])) / (2 * h)
        errors.append(np.linalg.norm(fd - dm) / np.linalg.norm(dm))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5)), errors
    assert errors[-1] < 1e-3


def test_random_features_flux_zero_and_closed_form_loss():
    model, apply_fn, params, record = random_features_run()
    data = teacher_data()
    assert float(jnp.max(jnp.abs(record.kernel_derivatives))) == 0.0  # frozen kernel, exactly
    # Closed form from an independent NumPy kernel: φφ^T/p, M = K/n, e(0) = -y.
    x = np.asarray(data.x_train)
    phi = np.tanh(x @ np.asarray(model.features[...]) / np.sqrt(4))
    m = phi @ phi.T / 24 / 12
    lam, vec = np.linalg.eigh(m)
    eps0 = (vec.T @ -np.asarray(data.y_train)) ** 2
    ts = np.asarray(record.ts)
    closed = np.exp(-2 * lam[None, :] * ts[:, None]) @ eps0 / (2 * 12)
    np.testing.assert_allclose(np.asarray(record.loss), closed, rtol=1e-8)
    assert closed[-1] < 0.2 * closed[0]  # the run actually learned something

    kato = sj.solve_kato(record.operator(), record.residuals[0], record.ts, rtol=1e-10, atol=1e-12)
    shells = sj.LogShells(jnp.asarray(float(lam.max()) * 1.01), jnp.asarray(2.0), 8)
    budget = sj.shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator)
    dissipation = float(jnp.max(jnp.sum(budget.dissipation, axis=-1)))
    assert float(jnp.max(jnp.abs(budget.flux))) <= 1e-14 * dissipation
    np.testing.assert_allclose(np.asarray(kato.loss), closed, rtol=1e-7)


@pytest.mark.slow
def test_optax_gd_follows_gradient_flow_to_first_order():
    data = teacher_data()
    apply_fn, params = from_nnx(MLP(4, 8, 1, rngs=nnx.Rngs(4), param_dtype=jnp.float64))
    lr, steps = 0.05, 40
    gd = train_optax(
        apply_fn, params, data.x_train, data.y_train, optax.sgd(lr),
        learning_rate=lr, num_steps=steps, num_records=6,
    )
    assert np.all(np.diff(np.asarray(gd.ts)) > 0) and float(gd.ts[-1]) == pytest.approx(lr * steps)
    flow = gradient_flow(apply_fn, params, data.x_train, data.y_train, np.asarray(gd.ts))
    err = float(jnp.max(jnp.abs(gd.residuals - flow.residuals)))
    # Global error of explicit Euler: O(η) with a constant of order ‖M‖ t ‖e‖.
    assert 1e-5 < err < 0.05 * float(jnp.max(jnp.abs(flow.residuals)))
    assert np.all(np.diff(np.asarray(gd.loss)) < 0)


def test_optax_sgd_and_adam_run_and_record():
    data = teacher_data()
    apply_fn, params = from_nnx(MLP(4, 8, 1, rngs=nnx.Rngs(5), param_dtype=jnp.float64))
    for opt, batch in ((optax.sgd(0.05), 4), (optax.adam(0.01), None)):
        rec = train_optax(
            apply_fn, params, data.x_train, data.y_train, opt, learning_rate=0.05,
            num_steps=30, num_records=5, batch_size=batch, key=jax.random.key(0),
            x_test=data.x_test, y_test=data.y_test,
        )
        assert rec.residuals.shape[1] == 12 and rec.test_loss.shape == rec.ts.shape
        assert float(rec.loss[-1]) < float(rec.loss[0])
    with pytest.raises(ValueError, match="key"):
        train_optax(apply_fn, params, data.x_train, data.y_train, optax.sgd(0.1),
                    learning_rate=0.1, num_steps=3, batch_size=2)


def test_helpers_and_errors():
    ts = log_times(10.0, 5)
    assert ts[0] == 0.0 and ts[-1] == pytest.approx(10.0) and np.all(np.diff(ts) > 0)
    steps = log_steps(1000, 10)
    assert steps[0] == 0 and steps[-1] == 1000 and np.all(np.diff(steps) > 0)
    data = teacher_data()
    apply_fn, params = from_nnx(MLP(4, 4, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64))
    with pytest.raises(ValueError, match="strictly increasing"):
        gradient_flow(apply_fn, params, data.x_train, data.y_train, [0.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="float32"):
        gradient_flow(apply_fn, params, data.x_train.astype(jnp.float32), data.y_train, [0.0, 1.0])
    with pytest.raises(ValueError, match="x_test"):
        gradient_flow(apply_fn, params, data.x_train, data.y_train, [0.0, 1.0], x_test=data.x_test)
    with pytest.raises(ValueError, match="at least 2 times"):
        gradient_flow(apply_fn, params, data.x_train, data.y_train, [0.0])
    with pytest.raises(ValueError, match="y contains NaN"):
        gradient_flow(apply_fn, params, data.x_train, data.y_train.at[3].set(jnp.nan), [0.0, 1.0])
    with pytest.raises(ValueError, match="rtol"):
        gradient_flow(apply_fn, params, data.x_train, data.y_train, [0.0, 1.0], rtol=float("nan"))


def test_training_config_is_typed_and_checked():
    config = TrainingConfig(output_scale=2, implementation=3, chunk_size=np.int64(4))
    assert config.output_scale == 2.0 and isinstance(config.output_scale, float)
    assert config.implementation is NTKImplementation.STRUCTURED and config.chunk_size == 4
    for bad in (0.0, -1.0, float("nan"), float("inf"), "big"):
        with pytest.raises(ValueError, match="output_scale"):
            TrainingConfig(output_scale=bad)
    with pytest.raises(ValueError, match="implementation"):
        TrainingConfig(implementation=9)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            TrainingConfig(chunk_size=bad)


def test_output_scale_config_and_deprecated_alpha_agree():
    """One recorded path, three ways in: the config, the deprecated alpha=, record_trajectory.

    At α = 4, θ moves 1/4 as far, so dM/dt is 1/4 of that at α = 1 for the same e (t = 0)."""
    data = teacher_data()
    apply_fn, params = from_nnx(MLP(4, 6, 1, rngs=nnx.Rngs(2), param_dtype=jnp.float64))
    ts = np.array([0.0, 0.5, 1.0])
    args = (apply_fn, params, data.x_train, data.y_train, ts)
    scaled = gradient_flow(*args, config=TrainingConfig(output_scale=4.0))
    with pytest.warns(DeprecationWarning, match="alpha"):
        legacy = gradient_flow(*args, alpha=4.0)
    assert scaled.output_scale == legacy.output_scale == 4.0
    np.testing.assert_array_equal(np.asarray(scaled.residuals), np.asarray(legacy.residuals))
    unit = gradient_flow(*args)
    np.testing.assert_allclose(
        np.asarray(scaled.kernel_derivatives[0]), np.asarray(unit.kernel_derivatives[0]) / 4,
        rtol=1e-12,
    )
    again = record_trajectory(
        apply_fn, params, scaled.params, ts, data.x_train, data.y_train,
        config=TrainingConfig(output_scale=4.0),
    )
    assert again.method is TrainingMethod.CUSTOM
    np.testing.assert_allclose(np.asarray(again.kernels), np.asarray(scaled.kernels), rtol=1e-13)
    with pytest.raises(TypeError, match="not both"):
        gradient_flow(*args, config=TrainingConfig(), alpha=2.0)


@pytest.mark.slow  # two solver compilations
def test_gradient_flow_accepts_an_implicit_solver_and_agrees():
    """The flow stays explicit by default (an implicit step needs the P×P Hessian), but any
    diffrax solver is accepted: Kvaerno5 with its dense Jacobian agrees with Dopri8."""
    import diffrax

    data = teacher_data()
    apply_fn, params = from_nnx(MLP(4, 8, 1, rngs=nnx.Rngs(6), param_dtype=jnp.float64))
    ts = np.array([0.0, 1.0, 10.0, 100.0])
    explicit = gradient_flow(apply_fn, params, data.x_train, data.y_train, ts)
    implicit = gradient_flow(apply_fn, params, data.x_train, data.y_train, ts,
                             solver=diffrax.Kvaerno5(), rtol=1e-9, atol=1e-11)
    scale = float(jnp.max(jnp.abs(explicit.residuals)))
    np.testing.assert_allclose(implicit.residuals, explicit.residuals, atol=1e-6 * scale)
