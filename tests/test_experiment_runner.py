"""The experiment runner resumes finished work, records failures, and survives torn files."""

import dataclasses
import json
import os
import stat
import sys
import types

import pytest

from spectral_jax import cli
from spectral_jax.experiments import registry
from spectral_jax.experiments._common import ExperimentConfig, Preset, publish
from spectral_jax.experiments._io import atomic_open, save_figure, write_json


def _fake_module(name, calls, fail=False):
    @dataclasses.dataclass(frozen=True)
    class Config(ExperimentConfig):
        size: int = 1

        @classmethod
        def full(cls):
            return cls(size=2)

    def run(config, out_dir):
        calls.append(name)
        # A figure is drawn before the failure, as a real experiment would.
        (out_dir / f"{name}.png").write_bytes(b"\x89PNG fake")
        if fail:
            raise RuntimeError("planted failure")
        (out_dir / f"{name}.json").write_text(json.dumps({"size": config.size}))
        return {}

    module = types.ModuleType(f"spectral_jax.experiments.{name}")
    module.Config, module.run = Config, run
    return module


@pytest.fixture
def fakes(monkeypatch):
    calls = []
    monkeypatch.setitem(
        sys.modules, "spectral_jax.experiments.fake_ok", _fake_module("fake_ok", calls)
    )
    monkeypatch.setitem(
        sys.modules, "spectral_jax.experiments.fake_bad", _fake_module("fake_bad", calls, fail=True)
    )
    monkeypatch.setattr(registry, "ALL", ("fake_ok", "fake_bad"))
    return calls


def _summary(out):
    return json.loads((out / "quick" / "summary.json").read_text())


def test_runner_resumes_and_records_failures(tmp_path, fakes):
    calls = fakes
    status = cli.main(["run", "all", "--out", str(tmp_path)])
    assert status == 1  # one failure makes the run fail
    summary = _summary(tmp_path)
    assert summary["fake_ok"]["status"] == "ok"
    assert summary["fake_bad"]["status"] == "failed"
    assert "planted failure" in summary["fake_bad"]["error"]
    assert "RuntimeError" in summary["fake_bad"]["traceback"]
    assert calls == ["fake_ok", "fake_bad"]

    # The failed experiment left no figure, no result and no staging folder.
    out = tmp_path / "quick"
    assert (out / "fake_ok.png").exists() and (out / "fake_ok.json").exists()
    assert not (out / "fake_bad.png").exists() and not (out / "fake_bad.json").exists()
    assert not list(out.glob(".*staging*"))

    # A rerun skips the finished experiment and retries the failed one.
    cli.main(["run", "all", "--out", str(tmp_path)])
    assert calls == ["fake_ok", "fake_bad", "fake_bad"]
    # --force reruns everything; another preset is another configuration and folder.
    cli.main(["run", "all", "--out", str(tmp_path), "--force"])
    assert calls[-2:] == ["fake_ok", "fake_bad"]
    cli.main(["run", "fake_ok", "--out", str(tmp_path), "--preset", "full"])
    assert calls[-1] == "fake_ok"
    assert json.loads((tmp_path / "full" / "fake_ok.json").read_text()) == {"size": 2}


def test_torn_summary_is_moved_aside_and_rebuilt(tmp_path, fakes):
    calls = fakes
    cli.main(["run", "all", "--out", str(tmp_path)])
    summary_path = tmp_path / "quick" / "summary.json"
    good = summary_path.read_text()
    summary_path.write_text(good[: len(good) // 2])  # a torn write
    with pytest.raises(json.JSONDecodeError):
        json.loads(summary_path.read_text())

    with pytest.warns(RuntimeWarning, match="unreadable"):
        status = cli.main(["run", "all", "--out", str(tmp_path)])
    assert status == 1
    aside = list((tmp_path / "quick").glob("summary.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == good[: len(good) // 2]
    summary = _summary(tmp_path)
    assert summary["fake_ok"]["status"] == "ok" and summary["fake_bad"]["status"] == "failed"
    # The finished experiment is still recognised from its record, so only the failed reruns.
    assert calls == ["fake_ok", "fake_bad", "fake_bad"]


def test_changed_config_or_missing_result_reruns(tmp_path, fakes, monkeypatch):
    calls = fakes
    cli.main(["run", "fake_ok", "--out", str(tmp_path)])
    (tmp_path / "quick" / "fake_ok.json").unlink()
    cli.main(["run", "fake_ok", "--out", str(tmp_path)])
    assert calls == ["fake_ok", "fake_ok"]
    module = sys.modules["spectral_jax.experiments.fake_ok"]
    monkeypatch.setattr(module.Config, "quick", classmethod(lambda cls: cls(size=5)))
    cli.main(["run", "fake_ok", "--out", str(tmp_path)])
    assert calls == ["fake_ok"] * 3


def test_unknown_experiment_is_named(tmp_path, fakes, capsys):
    assert cli.main(["run", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_atomic_writes_leave_the_old_file_on_failure(tmp_path):
    path = write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as handle:
            handle.write('{"a": ')
            raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_save_figure_is_atomic_and_checks_the_format(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, tmp_path / "f.png", close=False)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="suffix"):
        save_figure(fig, tmp_path / "f.nope", close=False)

    def broken(handle, **kwargs):
        handle.write(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_publish_writes_figure_before_result(tmp_path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    result = publish(tmp_path, "x", {"value": 1.5}, fig)
    assert result == {"value": 1.5}
    png, js = tmp_path / "x.png", tmp_path / "x.json"
    assert png.stat().st_mtime_ns <= js.stat().st_mtime_ns
    assert json.loads(js.read_text()) == {"value": 1.5}


def test_config_presets():
    @dataclasses.dataclass(frozen=True)
    class Only(ExperimentConfig):
        size: int = 3

    assert Only.from_preset("quick") == Only() == Only.from_preset(Preset.QUICK)
    with pytest.raises(NotImplementedError, match="Only"):
        Only.from_preset(Preset.FULL)
    with pytest.raises(ValueError, match="'huge'"):
        Only.from_preset("huge")
