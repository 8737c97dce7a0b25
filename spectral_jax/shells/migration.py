"""Migration: the energy a mode carries across a shell edge when its eigenvalue crosses it.

The k-th largest eigenvalue sits on the edge at the crossing time $\\tau$; its mode's energy
$c_k(\\tau)^2$ leaves shell j and enters shell j + 1 (or the reverse when it moves up).
Crossings of one edge at one time (a degenerate cluster crossing together) are grouped so that
their energies are read at one saved time.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__ = ["group_crossings", "migration", "membership_mismatch"]


def group_crossings(times: np.ndarray, edges: np.ndarray, rel: float) -> list[list[int]]:
    """Group events that share an edge and (to `rel`) a time: a degenerate cluster crossing."""
    groups: list[list[int]] = []
    for e in range(len(times)):
        for g in groups:
            f = g[0]
            if edges[f] == edges[e] and abs(times[f] - times[e]) <= rel * max(abs(times[f]), 1.0):
                g.append(e)
                break
        else:
            groups.append([e])
    return groups


def migration(crossings, groups, group_index, coefficients, ts_np, num_shells):
    """Energy carried across edges per (window, shell), and each crossing's energy."""
    eps = np.asarray(coefficients, np.float64) ** 2
    cross_w = np.searchsorted(ts_np, np.asarray(crossings.time, np.float64), side="right") - 1
    migration = np.zeros((len(ts_np) - 1, num_shells))
    energy = np.full(crossings.count, np.nan)
    direction, edge, rank = (np.asarray(x) for x in (crossings.direction, crossings.edge,
                                                     crossings.rank))
    for g, k in zip(groups, group_index):
        for e in g:
            # The k-th largest eigenvalue is the one on the edge at τ; its mode's energy moves.
            energy[e] = eps[k, rank[e]]
            moved = direction[e] * energy[e]
            migration[cross_w[e], edge[e]] -= moved
            migration[cross_w[e], edge[e] + 1] += moved
    return migration, energy, cross_w


def membership_mismatch(shells, lam_ends, crossings, cross_w) -> int:
    """(window, shell) pairs where the mode count changes differently than crossings say."""
    counts = np.asarray(jnp.sum(shells.membership(jnp.asarray(lam_ends)), axis=-2))
    expected = np.zeros((counts.shape[0] - 1, shells.num_shells))
    for w, j, d in zip(cross_w, np.asarray(crossings.edge), np.asarray(crossings.direction)):
        expected[w, j] -= d
        expected[w, j + 1] += d
    return int(np.sum(np.abs(np.diff(counts, axis=0) - expected) > 0.5))
