"""spectral_jax: training dynamics as spectral modes and spectral shells, in JAX.

Importing the package changes no global JAX setting. Analysis wants float64: call
`jax.config.update("jax_enable_x64", True)` yourself (the CLI and scripts do).
"""

from .direct import DirectSolution, solve_direct
from .kato import KatoSolution, kato_vector_field, solve_kato
from .operators import (
    AbstractOperator,
    CallableOperator,
    FrozenOperator,
    InterpolatedOperator,
    RotatingPowerLaw,
)
from .scaling import PowerLawFit, fit_power_law
from .shells import LogShells, ShellBudget, shell_budget
from .spectral import SpectralState, spectral_state

__version__ = "0.1.0"

__all__ = [
    "AbstractOperator",
    "CallableOperator",
    "DirectSolution",
    "FrozenOperator",
    "InterpolatedOperator",
    "KatoSolution",
    "LogShells",
    "PowerLawFit",
    "RotatingPowerLaw",
    "ShellBudget",
    "SpectralState",
    "fit_power_law",
    "kato_vector_field",
    "shell_budget",
    "solve_direct",
    "solve_kato",
    "spectral_state",
]
