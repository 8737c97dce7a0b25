"""The renormalized shell model: closures, shell ODE, planted transport, fits and exponents."""

from .closure_fit import (
    ClosureFit as ClosureFit,
    LogShiftReport as LogShiftReport,
    RenormalizabilityReport as RenormalizabilityReport,
    fit_closure as fit_closure,
    log_shift_invariance as log_shift_invariance,
    predict_flux as predict_flux,
    renormalizability as renormalizability,
)
from .exponents import (
    Collapse as Collapse,
    ExponentMeasurement as ExponentMeasurement,
    measure_exponent as measure_exponent,
    predicted_exponent as predicted_exponent,
    similarity_collapse as similarity_collapse,
)
from .planted import (
    ChainRun as ChainRun,
    TransportChain as TransportChain,
    chain_shell_budget as chain_shell_budget,
    power_law_transport as power_law_transport,
    solve_chain as solve_chain,
)
from .power_law_fit import (
    PowerLawFit as PowerLawFit,
    fit_power_law as fit_power_law,
)
from .shell_model import (
    PowerLawTransport as PowerLawTransport,
    ShellSolution as ShellSolution,
    closure as closure,
    solve_shells as solve_shells,
    transport_flux as transport_flux,
)
