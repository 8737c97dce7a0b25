"""Test configuration: float64 and strict promotion for the whole suite (diffrax/equinox style).

The library itself flips no global setting; the tests do, here, once.
"""

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

import matplotlib  # noqa: E402

matplotlib.use("Agg")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
