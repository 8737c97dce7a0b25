"""The `network_scaling` sweep: presets, validation, the CNN, the report, a tiny run end to end."""

import dataclasses
import json
import pathlib

import numpy as np
import pytest

from spectral_jax.experiments import network_scaling as ns
from spectral_jax.sweep import (
    ConfigError,
    Record,
    ResultStore,
    Status,
    load_sweep_config,
    parse_sweep_config,
    run_sweep,
)

PRESETS = pathlib.Path(ns.__file__).parent / "presets"


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_presets_load_and_validate(preset):
    config = load_sweep_config(PRESETS / f"network_scaling.{preset}.toml")
    runs = config.configurations(ns.SWEEP)
    assert config.sweep == ns.NAME
    assert {r.architecture for r in runs} == set(ns.Architecture)
    assert {r.dataset for r in runs} == set(ns.Dataset)
    assert {r.method for r in runs} == set(ns.Method)
    teacher = [r for r in runs if r.dataset is ns.Dataset.TEACHER]
    assert all(r.method is ns.Method.GRADIENT_FLOW for r in teacher
               if r.architecture is not ns.Architecture.MLP)
    mlp = [r for r in teacher if r.architecture is ns.Architecture.MLP]
    assert len({r.n_train for r in mlp}) >= 2 and len({r.width for r in mlp}) >= 2
    for arch in ns.Architecture:  # quick: n axis for the MLP only (each size compiles)
        assert len({r.seed for r in teacher if r.architecture is arch}) >= 2
        assert any(r.analyse_closure for r in teacher if r.architecture is arch)
        if preset == "full":
            assert len({r.n_train for r in teacher if r.architecture is arch}) >= 3
    if preset == "full":
        assert max(r.n_train for r in runs) >= 4096


@pytest.mark.parametrize("values, match", [
    ({"architecture": "transformer"}, "not one of"),
    ({"method": "sgd"}, "not one of"),
    ({"dataset": "mnist"}, "not one of"),
    ({"widht": 8}, "did you mean 'width'"),
    ({"width": 0}, "width must be >= 1"),
    ({"num_times": 3}, "num_times must be >= 8"),
    ({"target_exponent": 1.0}, "target_exponent must be > 1"),
    ({"analyse_shells": False, "analyse_closure": True}, "analyse_closure needs"),
    ({"architecture": "cnn", "dim": 15}, "perfect square"),
    ({"dataset": "digits", "n_train": 1700, "n_test": 256}, "1797 images"),
    ({"analyse_shells": 1}, "must be bool"),
])
def test_bad_values_raise_config_error(values, match):
    config = parse_sweep_config({"sweep": ns.NAME, "fixed": values})
    with pytest.raises(ConfigError, match=match):
        config.configurations(ns.SWEEP)


def test_parameters_reject_unknown_method_directly():
    with pytest.raises(ValueError, match="method must be one of"):
        ns.Parameters(method="sgd")


def test_tiny_cnn_convolution_is_nnx_conv():
    """The patches × kernel-matrix convolution equals `nnx.Conv` on the same kernel."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    cnn = ns._tiny_cnn_class()(4, 3, 2, rngs=nnx.Rngs(0), dtype=jnp.float64)
    a = jax.random.normal(jax.random.key(1), (5, 4, 4, 3), jnp.float64)
    conv = cnn.convs[1]
    np.testing.assert_allclose(conv.linear(a), conv.conv(a), rtol=1e-12, atol=1e-12)
    x = jax.random.normal(jax.random.key(2), (7, 16), jnp.float64)
    assert cnn(x).shape == (7,)


def _record(i, **config):
    """A synthetic record: λ_k = k^-2 and tail energy Σ_{j≥k} ε_j = 1/k (α = 2, β = 2:
    σ = 0.5), train loss ∝ t^-0.5, final test loss ∝ n^-1 p^-0.5."""
    params = ns.Parameters(**config)
    n, p = params.n_train, params.width
    k = np.arange(1.0, n + 1.0)
    ts = np.concatenate([[0.0], np.geomspace(1e-1, 1e4, 20)])
    loss = np.where(ts > 0, ts, 1.0) ** -0.5
    test = loss * 0.0 + 3.0 * n**-1.0 * p**-0.5 * (1.0 + 0.01 * params.seed)
    outputs = {"ts": ts, "train_loss": loss, "test_loss": test, "eigenvalues0": k**-2.0,
               "target_energy0": 1.0 / k - np.append(1.0 / k[1:], 0.0),
               "kernel_change": np.asarray(0.1)}
    return Record(sweep=ns.NAME, config_id=f"{i:020d}", config=dataclasses.asdict(params),
                  status=Status.OK, outputs=outputs)


def test_report_from_synthetic_records(tmp_path):
    records = [_record(i, n_train=n, width=p, seed=s, analyse_shells=False,
                       analyse_closure=False)
               for i, (n, p, s) in enumerate((n, p, s) for n, p in ((32, 16), (64, 16),
                                              (128, 16), (32, 32), (32, 64)) for s in range(3))]
    failed = Record(sweep=ns.NAME, config_id="f" * 20, status=Status.FAILED, outputs={},
                    config=dataclasses.asdict(ns.Parameters()), error="RuntimeError: boom")
    result = ns.report(records + [failed], tmp_path)
    (group,) = result["groups"]
    assert group["runs"] == 15 and group["alpha"] == pytest.approx(2.0)
    assert group["beta"] == pytest.approx(2.0)
    assert group["t"]["measured"] == pytest.approx(0.5, abs=0.02)
    assert group["n"]["measured"] == pytest.approx(1.0, abs=0.02)
    assert group["p"]["measured"] == pytest.approx(0.5, abs=0.02)
    assert group["n"]["ci_method"] == "bootstrap over seeds"
    assert group["t"]["predicted"] == pytest.approx(0.5)
    assert group["n"]["predicted"] == pytest.approx(1.0)  # min(β - 1, 2α)
    assert group["p"]["predicted"] == pytest.approx(1.0)  # β - 1
    saved = json.loads((tmp_path / "network_scaling.json").read_text())
    assert (tmp_path / "network_scaling.png").stat().st_size > 0
    assert [f["error"] for f in saved["failed"]] == ["RuntimeError: boom"]
    assert len(saved["exponents"]) == 3
    for row in saved["exponents"]:
        assert set(row) == {"quantity", "measured", "ci_low", "ci_high", "predicted"}
        assert row["ci_low"] <= row["measured"] <= row["ci_high"]


def test_report_of_failed_records_only(tmp_path):
    failed = Record(sweep=ns.NAME, config_id="f" * 20, status=Status.FAILED, outputs={},
                    config=dataclasses.asdict(ns.Parameters()), error="RuntimeError: boom")
    result = ns.report([failed], tmp_path)
    assert result["exponents"] == [] and len(result["failed"]) == 1
    assert not (tmp_path / "network_scaling.png").exists()


def _run(tmp_path, raw):
    config = parse_sweep_config({"sweep": ns.NAME, **raw})
    runs = config.configurations(ns.SWEEP)
    outcome = run_sweep(ns.SWEEP, runs, ResultStore(tmp_path / "store"), progress=False)
    assert outcome.failed == 0, [r.error for r in outcome.records if not r.ok]
    result = ns.report(ResultStore(tmp_path / "store").load(ns.NAME), tmp_path)
    saved = json.loads((tmp_path / "network_scaling.json").read_text())
    assert (tmp_path / "network_scaling.png").stat().st_size > 0
    for row in saved["exponents"]:
        assert set(row) == {"quantity", "measured", "ci_low", "ci_high", "predicted"}
    return result, saved


def test_tiny_sweep_end_to_end(tmp_path):
    """One small MLP shape, two seeds, no Kato analysis: records, fits, JSON, figure."""
    result, saved = _run(tmp_path, {
        "fixed": {"n_train": 16, "n_test": 16, "dim": 4, "width": 8, "t_max": 1e3,
                  "num_times": 16, "analyse_shells": False, "analyse_closure": False},
        "grid": {"seed": [0, 1]},
    })
    (group,) = result["groups"]
    assert group["runs"] == 2 and group["t"]["measured"] is not None
    assert group["closure_runs"] == 0 and group["kato_residual_error_max"] is None
    assert [row["quantity"] for row in saved["exponents"]] == [
        "mlp/teacher/gradient_flow: train loss ∝ t^-p"]
    run = saved["runs"][0]
    assert run["alpha"] > 0 and run["beta"] > 1 and run["t_window"] is not None


@pytest.mark.slow  # ~80 s: compiling the flow, the Kato solve and the closure fit
def test_tiny_sweep_with_shell_and_closure_analysis(tmp_path):
    result, saved = _run(tmp_path, {
        "fixed": {"n_train": 16, "n_test": 16, "dim": 4, "width": 8, "t_max": 1e3,
                  "num_times": 16},
        "grid": {"seed": [0, 1]},
    })
    (group,) = result["groups"]
    assert group["closure_runs"] == 2 and group["kato_residual_error_max"] < 1e-2
    for key in ("closure_v0", "closure_explained_variance", "flux_error_2_to_4",
                "log_shift_spread"):
        assert all(key in run for run in saved["runs"])


@pytest.mark.slow  # ~75 s: every architecture and method, one compilation per shape
def test_every_architecture_and_method_end_to_end(tmp_path):
    result, saved = _run(tmp_path, {
        "fixed": {"n_test": 16, "dim": 4, "width": 8, "t_max": 1e3, "num_times": 10,
                  "analyse_shells": False, "analyse_closure": False, "num_steps": 200},
        "grid": {"n_train": [16, 24]},
        "cases": [{"architecture": a} for a in ("mlp", "residual_mlp", "cnn")]
                 + [{"method": "adam"}],
    })
    assert len(result["groups"]) == 4
    assert {g["architecture"] for g in result["groups"]} == {"mlp", "residual_mlp", "cnn"}
    assert all(g["n"]["measured"] is not None for g in result["groups"])
    assert len(result["residual_vs_plain"]) == 1
