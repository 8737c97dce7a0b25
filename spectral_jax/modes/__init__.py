"""Modes: the instantaneous eigenbasis of M(t), the exact Kato modewise solver and its reference."""

from .clusters import (
    Clusters as Clusters,
)
from .direct import (
    DirectSolution as DirectSolution,
)
from .direct import (
    solve_direct as solve_direct,
)
from .kato import (
    KatoSolution as KatoSolution,
)
from .kato import (
    PrecisionWarning as PrecisionWarning,
)
from .kato import (
    kato_vector_field as kato_vector_field,
)
from .kato import (
    solve_kato as solve_kato,
)
from .self_check import (
    OperatorError as OperatorError,
)
from .self_check import (
    SelfCheck as SelfCheck,
)
from .self_check import (
    SelfCheckError as SelfCheckError,
)
from .spectral_state import (
    SpectralState as SpectralState,
)
from .spectral_state import (
    spectral_state as spectral_state,
)
