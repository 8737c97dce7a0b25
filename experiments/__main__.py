"""`python -m experiments [--preset P] [--only NAME ...] [--out DIR] [--force]`, from the
repository root: the older spelling of `spectral-jax run` (the experiments live in
`spectral_jax/experiments/`, their presets in `spectral_jax/experiments/presets/`)."""

import argparse
import sys

from spectral_jax.cli import main as cli_main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", default="results")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    command = ["run", *(args.only or ["all"]), "--preset", args.preset, "--out", args.out]
    return cli_main(command + (["--force"] if args.force else []))


if __name__ == "__main__":
    sys.exit(main())
