"""Logarithmic spectral shells: grid, exact budgets (modewise, projector, windowed), frontier."""

from .budget import ShellBudget as ShellBudget
from .budget import net_inflow as net_inflow
from .budget import shell_budget as shell_budget
from .crossings import Crossings as Crossings
from .crossings import find_crossings as find_crossings
from .crossings import refine_crossings as refine_crossings
from .frontier import Frontier as Frontier
from .frontier import resolution_frontier as resolution_frontier
from .grid import LogShells as LogShells
from .plotting import plot_shell_dynamics as plot_shell_dynamics
from .projector import projector_budget as projector_budget
from .projector import projector_budget_along as projector_budget_along
from .tracking import SpectralTrack as SpectralTrack
from .tracking import track_spectrum as track_spectrum
from .windowed import BudgetForm as BudgetForm
from .windowed import WindowedBudget as WindowedBudget
from .windowed import budget_residual as budget_residual
from .windowed import windowed_budget as windowed_budget
