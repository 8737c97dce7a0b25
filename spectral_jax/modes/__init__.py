"""Modes: the instantaneous eigenbasis of M(t), the exact Kato modewise solver and its reference."""

from .clusters import (
    Clusters as Clusters,
)
from .direct import (
    DirectSolution as DirectSolution,
    solve_direct as solve_direct,
)
from .kato import (
    KatoSolution as KatoSolution,
    solve_kato as solve_kato,
    kato_vector_field as kato_vector_field,
)
from .spectral_state import (
    SpectralState as SpectralState,
    spectral_state as spectral_state,
)
