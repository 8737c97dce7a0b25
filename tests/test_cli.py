"""The `spectral-jax` command: help, list, errors that name the problem, sweep and report."""

import importlib.metadata
import os
import pathlib
import subprocess
import sys

import pytest

from spectral_jax import cli
from spectral_jax.experiments import registry
from spectral_jax.sweep import ResultStore, load_sweep_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_command_is_installed_the_standard_way():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert scripts["spectral-jax"].value == "spectral_jax.cli:main"


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "spectral_jax", "--help"], capture_output=True,
                         text=True, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    for command in ("list", "run", "sweep", "report"):
        assert command in out.stdout


def test_list_shows_every_experiment_and_its_kind(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in registry.ALL:
        assert name in out
    assert "sweep" in out and "single" in out


@pytest.mark.parametrize("name", [n for n in registry.ALL
                                  if registry.is_sweep(registry.load(n))])
@pytest.mark.parametrize("preset", ["quick", "full"])
def test_shipped_presets_load_and_every_configuration_validates(name, preset):
    module = registry.load(name)
    config = load_sweep_config(registry.preset_file(name, preset))
    assert config.sweep == module.SWEEP.name
    assert len(config.configurations(module.SWEEP)) >= 1


def _write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ('sweep = "lazy_scaling"\n[grid]\nspectral_exponnt = [1.0]\n',
         "unknown key grid.spectral_exponnt (did you mean 'spectral_exponent'?)"),
        ('sweep = "lazy_scaling"\n[fixed]\nnum_times = "many"\n',
         "num_times must be int, got str"),
        ('sweep = "lazy_scaling"\n[fixed]\ntarget_exponent = 0.5\n',
         "target_exponent must be > 1"),
        ('sweep = "lazy_scalng"\n', "unknown sweep 'lazy_scalng'"),
        ('sweep = "lazy_scaling"\n[grid\n', "not valid TOML"),
        ('sweep = "resolution_limits"\n[fixed]\nresolution = "depth"\n',
         "resolution = 'depth' is not one of ['data_size', 'width']"),
        ('sweep = "lazy_scaling"\n[options]\nworkers = 0\n',
         "options.workers must be a positive integer, got 0"),
    ],
)
def test_sweep_errors_name_the_problem(tmp_path, capsys, text, message):
    status = cli.main(["sweep", str(_write(tmp_path, text)), "--out", str(tmp_path / "out")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("spectral-jax: error: ") and message in err
    assert not (tmp_path / "out" / "lazy_scaling").exists()  # nothing ran


def test_missing_config_file_and_unknown_experiment(tmp_path, capsys):
    assert cli.main(["sweep", str(tmp_path / "nope.toml")]) == 2
    assert "no such sweep configuration file" in capsys.readouterr().err
    assert cli.main(["run", "exponent", "--out", str(tmp_path)]) == 2
    assert "did you mean 'exponents'?" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "no sweep results here" in capsys.readouterr().err


def test_workers_flag_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error
        cli.main(["run", "exponents", "--workers", "0", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--workers: must be >= 1, got 0" in capsys.readouterr().err


def test_sweep_then_report_from_stored_records(tmp_path, capsys):
    config = _write(tmp_path, 'sweep = "lazy_scaling"\n[fixed]\nt_max = 1e3\nnum_times = 25\n'
                              '[grid]\nspectral_exponent = [1.0, 2.0]\n'
                              'target_exponent = [2.0, 3.0]\n')
    out = tmp_path / "out"
    assert cli.main(["sweep", str(config), "--out", str(out)]) == 0
    for name in ("lazy_scaling.json", "lazy_scaling.png", "summary.md"):
        assert (out / name).exists()
    table = (out / "summary.md").read_text()
    assert "| lazy_scaling | loss ∝ t^-p" in table
    store = ResultStore(out / "lazy_scaling")
    stamps = {p: p.stat().st_mtime_ns for p in store.records_dir.iterdir()}
    assert len(stamps) == 4
    (out / "lazy_scaling.json").unlink()
    capsys.readouterr()
    assert cli.main(["report", str(out)]) == 0  # no recomputation: the records stay as they were
    assert "report from 4 stored records" in capsys.readouterr().out
    assert (out / "lazy_scaling.json").exists()
    assert {p: p.stat().st_mtime_ns for p in store.records_dir.iterdir()} == stamps
