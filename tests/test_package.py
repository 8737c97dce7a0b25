"""The package imports cleanly: public names of docs/theory.md §4, no global side effects."""

import subprocess
import sys

import spectral_jax as sj

PUBLIC_NAMES = [
    "CallableOperator",
    "FrozenOperator",
    "RotatingPowerLaw",
    "InterpolatedOperator",
    "solve_kato",
    "solve_direct",
    "LogShells",
    "shell_budget",
    "empirical_ntk",
    "fit_power_law",
]


def test_design_public_names_reachable():
    missing = [name for name in PUBLIC_NAMES if not hasattr(sj, name)]
    assert missing == []
    assert set(sj.__all__) <= set(dir(sj))


def test_import_changes_no_global_jax_setting():
    code = (
        "import jax, sys\n"
        "before = (jax.config.jax_enable_x64, jax.config.jax_numpy_rank_promotion,"
        " jax.config.jax_numpy_dtype_promotion)\n"
        "import spectral_jax\n"
        "after = (jax.config.jax_enable_x64, jax.config.jax_numpy_rank_promotion,"
        " jax.config.jax_numpy_dtype_promotion)\n"
        "assert before == after, (before, after)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
