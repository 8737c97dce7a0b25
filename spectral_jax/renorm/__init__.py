"""The renormalized shell model: closures, shell ODE, planted transport, fits and exponents."""

# ruff: noqa: I001  (explicit `X as X` re-exports, grouped by module)

from .calibration import (
    RatioTest as RatioTest,
    RenormalizabilityNull as RenormalizabilityNull,
    ratio_test as ratio_test,
    renormalizability_null as renormalizability_null,
)
from .closure_fit import (
    ClosureFit as ClosureFit,
    fit_closure as fit_closure,
    predict_flux as predict_flux,
)
from .closures import (
    PowerLawTransport as PowerLawTransport,
    closure as closure,
    transport_flux as transport_flux,
)
from .exponents import (
    Collapse as Collapse,
    ExponentMeasurement as ExponentMeasurement,
    ResolutionExponents as ResolutionExponents,
    measure_exponent as measure_exponent,
    predicted_exponent as predicted_exponent,
    predicted_resolution_exponents as predicted_resolution_exponents,
    similarity_collapse as similarity_collapse,
)
from .fit_window import (
    PlateauWindow as PlateauWindow,
    local_slopes as local_slopes,
    plateau_window as plateau_window,
)
from .log_shift import (
    LogShiftReport as LogShiftReport,
    log_shift_invariance as log_shift_invariance,
)
from .options import (
    ClosureKind as ClosureKind,
    Reconstruction as Reconstruction,
)
from .planted import (
    ChainRun as ChainRun,
    TransportChain as TransportChain,
    chain_from_velocity as chain_from_velocity,
    chain_shell_budget as chain_shell_budget,
    power_law_transport as power_law_transport,
    solve_chain as solve_chain,
)
from .power_law_fit import (
    Bootstrap as Bootstrap,
    CIMethod as CIMethod,
    PowerLawFit as PowerLawFit,
    fit_power_law as fit_power_law,
)
from .renormalizability import (
    RENORMALIZABILITY_THRESHOLD as RENORMALIZABILITY_THRESHOLD,
    RenormalizabilityReport as RenormalizabilityReport,
    renormalizability as renormalizability,
)
from .shell_model import (
    ShellSolution as ShellSolution,
    solve_shells as solve_shells,
)
from .velocities import (
    BrokenPowerLawVelocity as BrokenPowerLawVelocity,
    BumpVelocity as BumpVelocity,
    PowerLawVelocity as PowerLawVelocity,
)
