"""Run experiments by name into `<out>/<preset>/` (what `spectral-jax run` does).

- A **sweep** experiment runs its preset TOML through the sweep engine into the result store
  `<out>/<preset>/<name>/` (one record per configuration: resumable at that grain), then its
  `report` writes `<name>.json` and `<name>.png` from the stored records.
- A **single-run** experiment runs `run(config, stage)`; finished runs with the same
  configuration are skipped.

Either way the report or run happens in a private staging folder whose files reach the results
only on success (`_runs.staging`). A failure is recorded in `<name>.run.json` and
`summary.json` with its traceback and the others still run; the exit status is non-zero if
any failed. After every experiment `summary.md` is rewritten: one row per measured exponent.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
import traceback

from ..sweep import ResultStore, load_sweep_config, run_sweep
from ._common import Preset, to_jsonable
from ._runs import SUMMARY, finished, load_summary, record_run, staging
from .registry import is_sweep, load, preset_file
from .summary import write_summary_markdown

__all__ = ["make_config", "run_experiments", "run_sweep_report"]


def make_config(module, preset: Preset):
    """`module.Config.quick()` or `.full()`."""
    factory = getattr(module.Config, preset.value, None)
    if not callable(factory):
        raise TypeError(f"{module.__name__}.Config has no `{preset.value}()` preset")
    return factory()


def _failure(exc: BaseException, **extra) -> dict:
    return {"status": "failed", "error": repr(exc), "traceback": traceback.format_exc(), **extra}


def run_sweep_report(module, config, store_dir: pathlib.Path, out_dir: pathlib.Path,
                     *, progress: bool = True, workers: int | None = None) -> dict:
    """Run a sweep configuration into `store_dir`, then its report into `out_dir`.
    `workers` (if given) overrides the file's `options.workers`."""
    sweep = module.SWEEP
    options = config.options
    if workers is not None:
        options = dataclasses.replace(options, workers=workers)
    outcome = run_sweep(sweep, config.configurations(sweep), ResultStore(store_dir),
                        options=options, progress=progress)
    print(f"[{sweep.name}] {outcome.computed} computed, {outcome.skipped} stored earlier, "
          f"{outcome.failed} failed; {outcome.compilations} compilation(s) "
          f"{outcome.compile_seconds:.1f} s, running {outcome.run_seconds:.1f} s", flush=True)
    with staging(out_dir, sweep.name) as (stage, published):
        module.report(outcome.records, stage)
    return {"files": published, "computed": outcome.computed, "skipped": outcome.skipped,
            "failed_configurations": outcome.failed, "compilations": outcome.compilations}


def _run_one(name: str, preset: Preset, out_dir: pathlib.Path, force: bool,
             workers: int | None):
    module = load(name)
    if is_sweep(module):
        path = preset_file(name, preset)
        config = load_sweep_config(path)
        extra = run_sweep_report(module, config, out_dir / name, out_dir, workers=workers)
        return {"status": "ok", "config": str(path.name), **extra}
    config = make_config(module, preset)
    config_json = json.dumps(to_jsonable(config), sort_keys=True, default=repr)
    done = None if force else finished(out_dir, name, config_json)
    if done is not None:
        return None
    with staging(out_dir, name) as (stage, published):
        module.run(config, stage)
    return {"status": "ok", "config": config_json, "files": published}


def run_experiments(names, preset: Preset, out: pathlib.Path, *, force: bool = False,
                    workers: int | None = None) -> int:
    """Run `names` (validated by the caller) with `preset` into `out/<preset>/`; 0 if all ok.
    `workers`: local processes for the EACH sweeps (`SweepOptions.workers`; None: preset's)."""
    out_dir = pathlib.Path(out) / preset.value
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = load_summary(out_dir)
    for i, name in enumerate(names, 1):
        prefix = f"[{i}/{len(names)}] {name}"
        print(f"{prefix}: running ...", flush=True)
        start = time.perf_counter()
        try:
            record = _run_one(name, preset, out_dir, force, workers)
        except Exception as exc:
            record = _failure(exc)
            print(f"{prefix}: FAILED ({exc!r})", flush=True)
        if record is None:
            previous = summary.get(name, {}).get("seconds", 0.0)
            print(f"{prefix}: done earlier ({previous:.1f} s), skipped", flush=True)
            continue
        record["seconds"] = time.perf_counter() - start
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        record_run(out_dir, summary, name, record)
        write_summary_markdown(out_dir, summary)
        print(f"{prefix}: {record['status']} in {record['seconds']:.1f} s", flush=True)
    failed = [n for n in names if summary.get(n, {}).get("status") != "ok"]
    print(f"results in {out_dir}/ ({SUMMARY}, summary.md); failed: {failed or 'none'}")
    return 1 if failed else 0
