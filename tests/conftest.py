"""Test configuration, applied once for the whole suite.

- jaxtyping annotations (shapes, dtypes, types) are checked at run time by beartype: the import
  hook is installed here, before anything imports `spectral_jax`, so that every function and
  dataclass of the package is checked (tests/typechecks.py). Inside `pytest.raises` blocks the
  checks step aside, so that the library's own error for a bad input is what the test sees.
  `SPECTRAL_JAX_TYPECHECK=0` turns the checks off (to measure their cost).
- float64 and strict promotion (diffrax/equinox style). The library itself flips no global
  setting; the tests do, here.
"""

import os
import sys

import pytest

if os.environ.get("SPECTRAL_JAX_TYPECHECK", "1") != "0":
    import typechecks  # tests/ is on sys.path (pythonpath in pyproject.toml)
    from jaxtyping import install_import_hook

    if "spectral_jax" in sys.modules:  # a hook installed now would silently check nothing
        raise RuntimeError("spectral_jax was imported before tests/conftest.py installed the hook")
    install_import_hook("spectral_jax", "typechecks.typechecker")
    pytest.raises = typechecks.raises_unchecked(pytest.raises)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

import matplotlib  # noqa: E402

matplotlib.use("Agg")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
