"""Modes: the instantaneous eigenbasis of M(t), the exact Kato modewise solver and its reference."""

from .clusters import Clusters as Clusters
from .direct import DirectSolution as DirectSolution, solve_direct as solve_direct
from .frozen import solve_frozen as solve_frozen
from .kato import (
    KatoSolution as KatoSolution,
    PrecisionWarning as PrecisionWarning,
    kato_vector_field as kato_vector_field,
    solve_kato as solve_kato,
)
from .refine import (
    RefinedBasis as RefinedBasis,
    eigh_refined_or_fallback as eigh_refined_or_fallback,
    refine_eigenbasis as refine_eigenbasis,
)
from .self_check import (
    OperatorError as OperatorError,
    SelfCheck as SelfCheck,
    SelfCheckError as SelfCheckError,
)
from .spectral_state import SpectralState as SpectralState, spectral_state as spectral_state
