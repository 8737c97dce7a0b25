"""spectral_jax: training dynamics as spectral modes and spectral shells, in JAX.

Importing the package changes no global JAX setting. Analysis wants float64: call
`jax.config.update("jax_enable_x64", True)` yourself (the CLI and scripts do).
"""

from .direct import DirectSolution, solve_direct
from .kato import KatoSolution, kato_vector_field, solve_kato
from .network_analysis import NetworkAnalysis, analyze_training
from .ntk import NTKImplementation, empirical_ntk, from_linen, from_nnx, ntk_flow_derivative, ntk_fn
from .operators import (
    AbstractOperator,
    CallableOperator,
    FrozenOperator,
    InterpolatedOperator,
    RotatingPowerLaw,
)
from .scaling import PowerLawFit, fit_power_law
from .shells import LogShells, ShellBudget, shell_budget
from .budget import WindowedBudget, budget_residual, windowed_budget
from .frontier import Frontier, resolution_frontier
from .plotting import plot_shell_dynamics
from .projector import projector_budget
from .spectral import SpectralState, spectral_state
from .data import RegressionData, load_digits_data, power_law_teacher
from .training import TrainingRecord, gradient_flow, log_times, train_optax
from .renormalized import PowerLawTransport, ShellSolution, closure, solve_shells, transport_flux
from .closure_fit import ClosureFit, fit_closure, log_shift_invariance, renormalizability
from .transport import TransportChain, power_law_transport, solve_chain
from .exponents import measure_exponent, predicted_exponent, similarity_collapse

__version__ = "0.1.0"

__all__ = [
    "ClosureFit",
    "PowerLawTransport",
    "ShellSolution",
    "TransportChain",
    "closure",
    "fit_closure",
    "log_shift_invariance",
    "measure_exponent",
    "power_law_transport",
    "predicted_exponent",
    "renormalizability",
    "similarity_collapse",
    "solve_chain",
    "solve_shells",
    "transport_flux",
    "NTKImplementation",
    "NetworkAnalysis",
    "RegressionData",
    "TrainingRecord",
    "analyze_training",
    "empirical_ntk",
    "from_linen",
    "from_nnx",
    "gradient_flow",
    "load_digits_data",
    "log_times",
    "ntk_flow_derivative",
    "ntk_fn",
    "power_law_teacher",
    "train_optax",
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
    "Frontier",
    "WindowedBudget",
    "budget_residual",
    "plot_shell_dynamics",
    "projector_budget",
    "resolution_frontier",
    "windowed_budget",
]
