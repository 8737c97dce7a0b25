"""The `spectral-jax` command: list, run, sweep and report experiments.

    spectral-jax list
    spectral-jax run NAME... [--preset quick|full] [--out DIR] [--force] [--workers N]
    spectral-jax sweep CONFIG.toml [--out DIR] [--workers N]
    spectral-jax report DIR

Float64 is switched on here, in the application: importing the library changes no global
JAX setting, but the experiments analyse in float64.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

__all__ = ["main"]

_EXIT_USAGE = 2


class _Fail(Exception):
    """A user error: printed as `spectral-jax: error: ...` with exit status 2."""


_WORKERS_HELP = ("local CPU processes for the one-at-a-time (each) sweeps, for many-core CPUs "
                 "(default: the config's options.workers, else 1)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from .experiments._common import Preset

    parser = argparse.ArgumentParser(
        prog="spectral-jax",
        description="Spectral-shell experiments and sweeps (spectral_jax).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the experiments and their presets")
    run = sub.add_parser("run", help="run experiments with a preset")
    run.add_argument("names", nargs="+", metavar="NAME", help="experiment names (see list), "
                     "or `main` for the scaling sweeps of `make run`, or `all`")
    run.add_argument("--preset", default=Preset.QUICK, type=Preset, choices=list(Preset))
    run.add_argument("--out", default="results", type=pathlib.Path, help="output folder")
    run.add_argument("--force", action="store_true",
                     help="rerun finished single-run experiments (sweeps resume per record)")
    run.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                     help=_WORKERS_HELP)
    sweep = sub.add_parser("sweep", help="run a sweep from a TOML file")
    sweep.add_argument("config", type=pathlib.Path, metavar="CONFIG.toml")
    sweep.add_argument("--out", type=pathlib.Path, default=None,
                       help="output folder (default results/sweeps/<file name>)")
    sweep.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                       help=_WORKERS_HELP)
    report = sub.add_parser("report", help="tables and figures from stored results")
    report.add_argument("directory", type=pathlib.Path, metavar="DIR")
    return parser


def _list(args) -> int:
    from .experiments import registry

    for name in registry.ALL:
        module = registry.load(name)
        kind = "sweep " if registry.is_sweep(module) else "single"
        first = (module.__doc__ or "").strip().splitlines()[0]
        main = "*" if name in registry.MAIN else " "
        print(f"{main} {name:<18} {kind}  {first}")
    print("\n* runs in `make run` (spectral-jax run main). Presets: quick, full.")
    return 0


def _run(args) -> int:
    from .experiments import registry
    from .experiments.runner import run_experiments

    names = []
    for name in args.names:
        names.extend({"main": registry.MAIN, "all": registry.ALL}.get(name, [name]))
    for name in names:
        registry.load(name)  # an unknown name fails before anything runs
    return run_experiments(list(dict.fromkeys(names)), args.preset, args.out, force=args.force,
                           workers=args.workers)


def _sweep(args) -> int:
    from .experiments import registry
    from .experiments.runner import run_sweep_report
    from .experiments.summary import write_summary_markdown
    from .sweep import load_sweep_config

    config = load_sweep_config(args.config)
    modules = registry.sweeps()
    if config.sweep not in modules:
        raise _Fail(f"{args.config}: unknown sweep {config.sweep!r}; known: "
                    f"{', '.join(sorted(modules))}")
    config.configurations(modules[config.sweep].SWEEP)  # every key checked before running
    out = args.out or pathlib.Path("results") / "sweeps" / args.config.stem
    out.mkdir(parents=True, exist_ok=True)
    extra = run_sweep_report(modules[config.sweep], config, out / config.sweep, out,
                             workers=args.workers)
    write_summary_markdown(out, {config.sweep: {"status": "ok", **extra}})
    print(f"results in {out}/ ({config.sweep}.json, {config.sweep}.png, summary.md)")
    return 0


def _report(args) -> int:
    from .experiments import registry
    from .experiments._runs import staging
    from .experiments.summary import write_summary_markdown
    from .sweep import ResultStore

    directory = args.directory
    if not directory.is_dir():
        raise _Fail(f"{directory}: no such directory")
    stores = [p.parent for p in sorted(directory.glob("*/records")) if p.is_dir()]
    stores += [directory] if (directory / "records").is_dir() else []
    if not stores:
        raise _Fail(f"{directory}: no sweep results here (no records/ folder)")
    modules, summary = registry.sweeps(), {}
    for store_dir in stores:
        out = store_dir.parent if store_dir != directory else directory
        by_sweep: dict[str, list] = {}
        for record in ResultStore(store_dir).load():  # every record file read once
            by_sweep.setdefault(record.sweep, []).append(record)
        for name, records in sorted(by_sweep.items()):
            if name not in modules:
                print(f"[{name}] {len(records)} records; no report known for this sweep")
                continue
            with staging(out, name) as (stage, _):
                modules[name].report(records, stage)
            summary[name] = {"status": "ok", "records": len(records)}
            print(f"[{name}] report from {len(records)} stored records -> {out}/{name}.json")
    path = write_summary_markdown(directory, summary)
    print(path.read_text())
    return 0


def main(argv=None) -> int:
    """Entry point of `spectral-jax` (and `python -m spectral_jax`)."""
    args = _parser().parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    from .experiments.registry import UnknownExperimentError
    from .sweep import ConfigError

    commands = {"list": _list, "run": _run, "sweep": _sweep, "report": _report}
    try:
        return commands[args.command](args)
    except (ConfigError, UnknownExperimentError, _Fail) as exc:
        print(f"spectral-jax: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
