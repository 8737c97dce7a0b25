"""The sweep engine: batching, sharding, multi-process runs, the store, resume and failures.

Runs that need a fresh JAX process (forced device counts, `jax.distributed`, SIGKILL) go
through the worker in `tests/sweep_fixtures.py`.
"""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from sweep_fixtures import TOY, TOY_DIES, TOY_EACH, ToyParameters, toy_configurations

from spectral_jax.sweep import (
    ConfigError,
    Execution,
    ResultStore,
    Sweep,
    SweepOptions,
    parse_sweep_config,
    run_sweep,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "sweep_fixtures.py"


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}", **extra)
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


def _worker(store, sweep="toy", *args, env=None, timeout=240):
    return subprocess.run(
        [sys.executable, str(WORKER), str(store), sweep, *args], env=env or _env(),
        capture_output=True, text=True, timeout=timeout, check=True,
    )


def _contents(store):
    """Configuration → (status, outputs), whichever sweep name (toy or toy_each) ran it."""
    return {content[2]: content[3:] for content in
            (r.content() for r in ResultStore(store).load())}


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted, unsharded, single-process runs of each toy sweep (by name, cached).

    Per sweep: a jitted batch and eager single calls may round differently in the last bit,
    so a run is compared with a reference of its own execution."""
    cache = {}

    def reference(sweep: str = "toy"):
        if sweep not in cache:
            store = tmp_path_factory.mktemp(f"reference-{sweep}")
            _worker(store, sweep)
            cache[sweep] = _contents(store)
            assert len(cache[sweep]) == len(toy_configurations())
        return cache[sweep]

    return reference


@pytest.mark.slow  # the sharded, 2-process and resume tests in CI cover the batched path
def test_batched_run_matches_one_at_a_time_and_compiles_once_per_shape(tmp_path):
    batched = run_sweep(TOY, toy_configurations(), ResultStore(tmp_path / "b"), progress=False)
    each = run_sweep(TOY_EACH, toy_configurations(), ResultStore(tmp_path / "e"),
                     progress=False)
    assert batched.compilations == 2  # two sizes, one batch each
    assert batched.computed == each.computed == 18 and batched.failed == 0
    for rb, re in zip(batched.records, each.records):
        assert rb.config == re.config
        for name in rb.outputs:
            np.testing.assert_allclose(rb.outputs[name], re.outputs[name], rtol=1e-12, atol=0)
    again = run_sweep(TOY, toy_configurations(), ResultStore(tmp_path / "b"), progress=False)
    assert (again.computed, again.skipped, again.compilations) == (0, 18, 0)


def test_sharded_over_four_devices_gives_identical_records(tmp_path, references):
    out = _worker(tmp_path, env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert "devices=4" in out.stdout
    assert _contents(tmp_path) == references()
    padded = {r.meta["padded_batch_size"] for r in ResultStore(tmp_path).load()}
    assert padded == {12}  # 9 configurations per shape, padded to a multiple of 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_with_jax_distributed_give_identical_records(tmp_path, references):
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path), "toy", "--coordinator",
             f"127.0.0.1:{port}", "--processes", "2", "--rank", str(rank)],
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in (0, 1)
    ]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "process=0/2 computed=9" in logs[0] and "process=1/2 computed=9" in logs[1]
    assert _contents(tmp_path) == references()
    writers = {r.meta["process_index"] for r in ResultStore(tmp_path).load()}
    assert writers == {0, 1}


@pytest.mark.parametrize(
    "sweep, extra",
    # One execution in CI (the batched one, killed between batches); both in test-all.
    [pytest.param("toy_each", (), marks=pytest.mark.slow), ("toy", ("--batch-size", "2"))],
)
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path, references, sweep, extra):
    store = ResultStore(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(tmp_path), sweep, *extra, "--sleep", "0.4"],
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while len(store.statuses()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(store.statuses())
    assert 3 <= partial < 18, "the kill must land in the middle of the sweep"
    out = _worker(tmp_path, sweep, *extra)
    assert f"skipped={partial}" in out.stdout and f"computed={18 - partial}" in out.stdout
    files = sorted(p.name for p in store.records_dir.iterdir())
    assert len(files) == 18 and all(f.endswith(".parquet") for f in files)  # no stray temp file
    assert _contents(tmp_path) == references(sweep)


def test_a_failing_configuration_is_stored_as_failed_and_the_rest_go_on(tmp_path):
    configs = toy_configurations(fail_above=1.5)  # scale 2.0 fails: 6 of 18
    outcome = run_sweep(TOY_EACH, configs, ResultStore(tmp_path), progress=False)
    failed = [r for r in outcome.records if not r.ok]
    assert outcome.failed == len(failed) == 6
    assert all("FloatingPointError: scale 2.0 is above fail_above" in r.error for r in failed)
    assert all("Traceback" in r.traceback and r.outputs == {} for r in failed)
    assert all(r.ok and r.outputs["eigenvalues"].shape == (r.config["size"],)
               for r in outcome.records if r.config["scale"] < 1.5)


def test_an_each_sweep_in_local_workers_gives_identical_records(tmp_path):
    configs = toy_configurations(fail_above=1.5)  # scale 2.0 fails: 6 of 18
    here = run_sweep(TOY_EACH, configs, ResultStore(tmp_path / "here"), progress=False)
    workers = run_sweep(TOY_EACH, configs, ResultStore(tmp_path / "workers"),
                        options=SweepOptions(workers=2), progress=False)
    assert (workers.computed, workers.failed) == (here.computed, here.failed) == (18, 6)
    # float64 in the spawned workers too, and failures stored with their own error
    assert _contents(tmp_path / "workers") == _contents(tmp_path / "here")
    records = ResultStore(tmp_path / "workers").load()
    assert all("FloatingPointError: scale 2.0" in r.error for r in records if not r.ok)
    pids = {r.meta["pid"] for r in records}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    for size in (6, 9):  # a unit (equal static fields) is computed whole by one worker
        assert len({r.meta["pid"] for r in records if r.config["size"] == size}) == 1


def test_a_dying_worker_stops_the_sweep_with_an_error_not_a_hang(tmp_path):
    with pytest.raises(RuntimeError, match="a worker process died"):
        run_sweep(TOY_DIES, toy_configurations(), ResultStore(tmp_path),
                  options=SweepOptions(workers=2), progress=False)
    assert all(r.config["seed"] != 2 for r in ResultStore(tmp_path).load())


def test_workers_need_a_picklable_sweep(tmp_path):
    local = Sweep(name="local", parameters=ToyParameters, compute=lambda p: {},
                  execution=Execution.EACH)
    with pytest.raises(TypeError, match="defined at module level"):
        run_sweep(local, [ToyParameters()], ResultStore(tmp_path),
                  options=SweepOptions(workers=2), progress=False)
    with pytest.raises(ConfigError, match="options.workers must be a positive integer"):
        SweepOptions(workers=0)


def test_records_carry_their_provenance(tmp_path):
    outcome = run_sweep(TOY, toy_configurations()[:3], ResultStore(tmp_path), progress=False)
    meta = outcome.records[0].meta
    for key in ("spectral_jax_version", "jax_version", "jaxlib_version", "device_kind",
                "platform", "process_index", "pid", "compile_seconds", "run_seconds",
                "finished_at"):
        assert key in meta
    assert outcome.records[0].config["seed"] == 0
    assert outcome.compile_seconds > 0 and outcome.run_seconds > 0


def test_config_errors_name_the_problem():
    good = {"sweep": "toy", "grid": {"scale": [0.5, 1]}, "fixed": {"size": 4}}
    configs = parse_sweep_config(good).configurations(TOY)
    assert [c.scale for c in configs] == [0.5, 1.0]  # a TOML int where a float is declared
    with pytest.raises(ConfigError, match=r"unknown key grid.scal \(did you mean 'scale'\?\)"):
        parse_sweep_config({"sweep": "toy", "grid": {"scal": [1.0]}}).configurations(TOY)
    with pytest.raises(ConfigError, match="size must be int, got str"):
        parse_sweep_config({"sweep": "toy", "fixed": {"size": "8"}}).configurations(TOY)
    with pytest.raises(ConfigError, match="impossible configuration.*size must be >= 2"):
        parse_sweep_config({"sweep": "toy", "fixed": {"size": 1}}).configurations(TOY)
    with pytest.raises(ConfigError, match=r"unknown top-level key\(s\) \['gird'\]"):
        parse_sweep_config({"sweep": "toy", "gird": {}})
    with pytest.raises(ConfigError, match="grid.scale must be a non-empty list"):
        parse_sweep_config({"sweep": "toy", "grid": {"scale": 1.0}})
    with pytest.raises(ConfigError, match="options.batch_size must be a positive integer"):
        parse_sweep_config({"sweep": "toy", "options": {"batch_size": 0}})
    with pytest.raises(ConfigError, match="missing `sweep"):
        parse_sweep_config({"grid": {}})
    with pytest.raises(ConfigError, match="both in \\[fixed\\] and in \\[grid\\]"):
        parse_sweep_config({"sweep": "toy", "fixed": {"scale": 1.0},
                            "grid": {"scale": [2.0]}}).configurations(TOY)


def test_run_sweep_rejects_configurations_of_another_type(tmp_path):
    with pytest.raises(TypeError, match="ToyParameters"):
        run_sweep(TOY, [{"size": 4}], ResultStore(tmp_path), progress=False)
    assert ToyParameters().size == 8
    assert SweepOptions().batch_size is None
