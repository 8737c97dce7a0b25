"""The experiment runner resumes finished work and records failures instead of dropping them."""

import dataclasses
import json
import sys
import types

import experiments.__main__ as runner


def _fake_module(name, calls, fail=False):
    @dataclasses.dataclass(frozen=True)
    class Config:
        size: int = 1

        @classmethod
        def quick(cls):
            return cls()

    def run(config, out_dir):
        calls.append(name)
        if fail:
            raise RuntimeError("planted failure")
        (out_dir / f"{name}.json").write_text(json.dumps({"size": config.size}))
        return {}

    module = types.ModuleType(f"experiments.{name}")
    module.Config, module.run = Config, run
    return module


def test_runner_resumes_and_records_failures(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "experiments.fake_ok", _fake_module("fake_ok", calls))
    monkeypatch.setitem(
        sys.modules, "experiments.fake_bad", _fake_module("fake_bad", calls, fail=True)
    )
    monkeypatch.setattr(runner, "EXPERIMENTS", ["fake_ok", "fake_bad"])

    status = runner.main(["--out", str(tmp_path)])
    assert status == 1  # one failure makes the run fail
    summary = json.loads((tmp_path / "quick" / "summary.json").read_text())
    assert summary["fake_ok"]["status"] == "ok"
    assert summary["fake_bad"]["status"] == "failed"
    assert "planted failure" in summary["fake_bad"]["error"]
    assert calls == ["fake_ok", "fake_bad"]

    # A rerun skips the finished experiment and retries the failed one.
    runner.main(["--out", str(tmp_path)])
    assert calls == ["fake_ok", "fake_bad", "fake_bad"]
    # --force reruns everything.
    runner.main(["--out", str(tmp_path), "--force"])
    assert calls[-2:] == ["fake_ok", "fake_bad"]
