"""The test helpers themselves: a "no recompilation" assertion must be able to fail."""

import jax
import jax.numpy as jnp
from helpers import count_compilations


def test_count_compilations_sees_new_shapes_not_new_values():
    @jax.jit
    def f(x):
        return jnp.sin(x) * 2.0

    x3, x4 = jnp.ones(3), jnp.ones(4)  # made outside the counted blocks
    y3 = 0.5 * x3
    with count_compilations() as first:
        f(x3)
    with count_compilations() as same_shape:
        f(y3)
    with count_compilations() as new_shape:
        f(x4)
    assert first.count == 1 and new_shape.count == 1, (first.names, new_shape.names)
    assert same_shape.count == 0, same_shape.names
