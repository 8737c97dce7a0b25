"""Run the experiments: `python -m experiments [--preset quick|full] [--only NAME ...] [--force]`.

Each experiment writes `<out>/<preset>/<name>.json` and `<name>.png`. Finished experiments
are skipped on a rerun with the same configuration, so an interrupted run resumes where it
stopped. A failing experiment is recorded as failed (with its traceback) in `<name>.run.json`
and `summary.json`, leaves no figure or result behind, and the others still run; the exit
status is non-zero if any failed. Every file is written atomically (see `experiments/_runs.py`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import sys
import time
import traceback

from ._common import Preset, to_jsonable
from ._runs import SUMMARY, finished, load_summary, record_run, staging

# One module per scientific claim, in the order the chain of the theory builds them.
EXPERIMENTS = [
    "kato_demo",
    "shell_budget",
    "lazy_rich",
    "exponents",
    "renormalizability",
    "resolution_limits",
    "double_descent",
]


def make_config(module, preset: Preset):
    """`module.Config.quick()` or `.full()`."""
    factory = getattr(module.Config, preset.value, None)
    if not callable(factory):
        raise TypeError(f"{module.__name__}.Config has no `{preset.value}()` preset")
    return factory()


def _failure(exc: BaseException, **extra) -> dict:
    return {
        "status": "failed",
        "error": repr(exc),
        "traceback": traceback.format_exc(),
        **extra,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    parser.add_argument("--preset", default=Preset.QUICK, type=Preset, choices=list(Preset))
    parser.add_argument("--only", nargs="*", default=None, help="experiment names to run")
    parser.add_argument("--force", action="store_true", help="rerun finished experiments")
    parser.add_argument("--out", default="results", help="output folder")
    args = parser.parse_args(argv)

    names = args.only or EXPERIMENTS
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; known: {EXPERIMENTS}")
    out_dir = pathlib.Path(args.out) / args.preset.value
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = load_summary(out_dir)

    for i, name in enumerate(names, 1):
        prefix = f"[{i}/{len(names)}] {name}"
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"experiments.{name}")
            config = make_config(module, args.preset)
        except Exception as exc:  # a missing or broken module is a failed experiment
            record_run(out_dir, summary, name, _failure(exc, seconds=0.0))
            print(f"{prefix}: FAILED to load ({exc!r})", flush=True)
            continue
        config_json = json.dumps(to_jsonable(config), sort_keys=True, default=repr)
        done = None if args.force else finished(out_dir, name, config_json)
        if done is not None:
            print(f"{prefix}: done earlier ({done.get('seconds', 0):.1f} s), skipped", flush=True)
            continue
        print(f"{prefix}: running ...", flush=True)
        try:
            with staging(out_dir, name) as (stage, published):
                module.run(config, stage)
            record = {"status": "ok", "config": config_json, "files": published}
        except Exception as exc:
            record = _failure(exc, config=config_json)
            print(f"{prefix}: FAILED ({exc!r})", flush=True)
        record["seconds"] = time.perf_counter() - start
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        record_run(out_dir, summary, name, record)
        print(f"{prefix}: {record['status']} in {record['seconds']:.1f} s", flush=True)

    failed = [n for n in names if summary.get(n, {}).get("status") != "ok"]
    print(f"results in {out_dir}/ ({SUMMARY}); failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
