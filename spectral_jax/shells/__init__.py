"""Logarithmic spectral shells: grid, exact budgets (modewise, projector, windowed), frontier."""

from .frontier import (
    Frontier as Frontier,
    resolution_frontier as resolution_frontier,
)
from .grid import (
    LogShells as LogShells,
    ShellBudget as ShellBudget,
    shell_budget as shell_budget,
)
from .plotting import (
    plot_shell_dynamics as plot_shell_dynamics,
)
from .projector import (
    projector_budget as projector_budget,
    projector_budget_along as projector_budget_along,
)
from .windowed import (
    Crossings as Crossings,
    SpectralTrack as SpectralTrack,
    WindowedBudget as WindowedBudget,
    budget_residual as budget_residual,
    find_crossings as find_crossings,
    track_spectrum as track_spectrum,
    windowed_budget as windowed_budget,
)
