"""Logarithmic spectral shells: grid, exact budgets (modewise, projector, windowed), frontier."""

from .budget import (
    ShellBudget as ShellBudget,
    net_inflow as net_inflow,
    shell_budget as shell_budget,
)
from .crossings import (
    Crossings as Crossings,
    find_crossings as find_crossings,
    refine_crossings as refine_crossings,
)
from .frontier import Frontier as Frontier, resolution_frontier as resolution_frontier
from .grid import LogShells as LogShells
from .plotting import plot_shell_dynamics as plot_shell_dynamics
from .projector import (
    projector_budget as projector_budget,
    projector_budget_along as projector_budget_along,
)
from .tracking import SpectralTrack as SpectralTrack, track_spectrum as track_spectrum
from .windowed import (
    BudgetForm as BudgetForm,
    WindowedBudget as WindowedBudget,
    budget_residual as budget_residual,
    windowed_budget as windowed_budget,
)
