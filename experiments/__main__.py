"""Run the experiments: `python -m experiments [--preset quick|full] [--only NAME ...] [--force]`.

Each experiment writes `results/<preset>/<name>.json` and `<name>.png`. Finished experiments
are skipped on a rerun with the same configuration, so an interrupted run resumes where it
stopped. A failing experiment is recorded as failed in `summary.json` (with its traceback) and
the others still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pathlib
import sys
import time
import traceback

from ._common import to_jsonable

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


def make_config(module, preset: str):
    config_cls = module.Config
    factory = getattr(config_cls, preset, None)
    if callable(factory):
        return factory()
    return config_cls(preset=preset)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    parser.add_argument("--preset", default="quick", choices=["quick", "full"])
    parser.add_argument("--only", nargs="*", default=None, help="experiment names to run")
    parser.add_argument("--force", action="store_true", help="rerun finished experiments")
    parser.add_argument("--out", default="results", help="output folder")
    args = parser.parse_args(argv)

    out_dir = pathlib.Path(args.out) / args.preset
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}

    names = args.only or EXPERIMENTS
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; known: {EXPERIMENTS}")
    for i, name in enumerate(names, 1):
        prefix = f"[{i}/{len(names)}] {name}"
        try:
            module = importlib.import_module(f"experiments.{name}")
            config = make_config(module, args.preset)
        except Exception as exc:  # a missing or broken module is a failed experiment
            summary[name] = {"status": "failed", "error": repr(exc)}
            print(f"{prefix}: FAILED to load ({exc!r})", flush=True)
            continue
        config_json = json.dumps(to_jsonable(config), sort_keys=True, default=repr)
        previous = summary.get(name, {})
        if (
            not args.force
            and previous.get("status") == "ok"
            and previous.get("config") == config_json
            and (out_dir / f"{name}.json").exists()
        ):
            seconds = previous.get("seconds", 0)
            print(f"{prefix}: done earlier ({seconds:.1f} s), skipped", flush=True)
            continue
        print(f"{prefix}: running ...", flush=True)
        start = time.perf_counter()
        try:
            module.run(config, out_dir)
            summary[name] = {"status": "ok", "config": config_json}
        except Exception as exc:
            summary[name] = {
                "status": "failed",
                "config": config_json,
                "error": repr(exc),
                "traceback": traceback.format_exc(),
            }
            print(f"{prefix}: FAILED ({exc!r})", flush=True)
        summary[name]["seconds"] = time.perf_counter() - start
        summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True))
        entry = summary[name]
        print(f"{prefix}: {entry['status']} in {entry['seconds']:.1f} s", flush=True)

    failed = [n for n in names if summary.get(n, {}).get("status") != "ok"]
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True))
    print(f"results in {out_dir}/; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
