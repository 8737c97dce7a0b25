"""spectral_jax: training dynamics as spectral modes and spectral shells, in JAX.

Importing the package changes no global JAX setting. Analysis wants float64: call
`jax.config.update("jax_enable_x64", True)` yourself (the experiments and scripts do).

The chain of the theory, module by module:
operators (where M(t) comes from) → spectral (eigenpairs, Kato generator) → kato / direct
(the modewise and ambient solvers) → shells, projector, budget, frontier (spectral shells and
their exact energy budgets) → renormalized, closure_fit, transport, exponents (the shell model,
its closures and the scaling exponents); ntk, models, data, training, network_analysis connect
real flax networks to all of it.
"""

from .budget import WindowedBudget, budget_residual, windowed_budget
from .closure_fit import ClosureFit, fit_closure, log_shift_invariance, renormalizability
from .data import RegressionData, load_digits_data, power_law_teacher
from .direct import DirectSolution, solve_direct
from .exponents import measure_exponent, predicted_exponent, similarity_collapse
from .frontier import Frontier, resolution_frontier
from .kato import KatoSolution, kato_vector_field, solve_kato
from .network_analysis import NetworkAnalysis, analyze_training
from .ntk import (
    NTKImplementation,
    empirical_ntk,
    from_linen,
    from_nnx,
    ntk_flow_derivative,
    ntk_fn,
)
from .operators import (
    AbstractOperator,
    CallableOperator,
    FrozenOperator,
    InterpolatedOperator,
    RotatingPowerLaw,
    banded_generator,
)
from .plotting import plot_shell_dynamics
from .projector import projector_budget
from .renormalized import PowerLawTransport, ShellSolution, closure, solve_shells, transport_flux
from .scaling import PowerLawFit, fit_power_law
from .shells import LogShells, ShellBudget, shell_budget
from .spectral import SpectralState, spectral_state
from .training import TrainingRecord, gradient_flow, log_times, train_optax
from .transport import TransportChain, power_law_transport, solve_chain

__version__ = "0.1.0"

__all__ = [
    # operators and spectral state
    "AbstractOperator",
    "CallableOperator",
    "FrozenOperator",
    "InterpolatedOperator",
    "RotatingPowerLaw",
    "banded_generator",
    "SpectralState",
    "spectral_state",
    # solvers
    "DirectSolution",
    "KatoSolution",
    "kato_vector_field",
    "solve_direct",
    "solve_kato",
    # shells
    "Frontier",
    "LogShells",
    "ShellBudget",
    "WindowedBudget",
    "budget_residual",
    "plot_shell_dynamics",
    "projector_budget",
    "resolution_frontier",
    "shell_budget",
    "windowed_budget",
    # renormalized shell model
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
    # networks
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
    # fits
    "PowerLawFit",
    "fit_power_law",
]
