"""Splitting a batch into fixed-size blocks, so that eNTK memory is bounded by the block size."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["to_blocks", "from_blocks", "pairwise_blocks"]


def to_blocks(x, size: int):
    """(n, ...) -> (num_blocks, size, ...), the last block padded with copies of row 0."""
    n = x.shape[0]
    num_blocks = -(-n // size)
    pad = num_blocks * size - n
    if pad:
        # Copies of a real input, not zeros: padding must not produce NaN/Inf in the network.
        x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))], axis=0)
    return x.reshape((num_blocks, size, *x.shape[1:]))


def from_blocks(blocks, n: int):
    """Inverse of `to_blocks`: (num_blocks, size, ...) -> (n, ...), padding dropped."""
    return blocks.reshape((-1, *blocks.shape[2:]))[:n]


def pairwise_blocks(block_fn, x1, x2, chunk: int, prepare=lambda xa: xa):
    """Assemble K from (chunk × chunk) blocks `block_fn(prepare(x1_block), x2_block)`.

    `prepare` runs once per row of blocks (e.g. the Jacobian of the row's inputs)."""
    n1, n2 = x1.shape[0], x2.shape[0]
    b1, b2 = to_blocks(x1, chunk), to_blocks(x2, chunk)

    def row(xa):
        state = prepare(xa)
        cols = jax.lax.map(lambda xb: block_fn(state, xb), b2)  # (nb2, c, c)
        return jnp.transpose(cols, (1, 0, 2)).reshape(chunk, -1)  # (c, nb2 * c)

    rows = jax.lax.map(row, b1)  # (nb1, c, nb2 * c)
    return from_blocks(rows, n1)[:, :n2]
