"""Real networks: empirical NTK, model adapters, models, data, training records and their analysis.

One concept per module: `ntk` (the public eNTK, `ntk_products` and `ntk_structured` its
implementations), `adapters` (flax modules as `(apply_fn, params)`), `flow` (the exact
$\\dot M$ along gradient flow), `record` (`TrainingRecord`, `TrainingConfig`), `training`
(gradient flow and optax runs), `lazy` (frozen-kernel predictions), `infinite_width` (the
infinite-width NNGP and NTK of MLPs, the exact lazy reference), `analysis` (shells and budgets
of a record), `models`, `data`.
"""

from ._apply import num_params as num_params
from .adapters import from_linen as from_linen, from_nnx as from_nnx
from .analysis import (
    NetworkAnalysis as NetworkAnalysis,
    analyze_training as analyze_training,
    default_shells as default_shells,
)
from .data import (
    RegressionData as RegressionData,
    load_digits_data as load_digits_data,
    power_law_teacher as power_law_teacher,
)
from .flow import (
    flow_velocity as flow_velocity,
    kernel_jvp as kernel_jvp,
    ntk_flow_derivative as ntk_flow_derivative,
)
from .infinite_width import (
    Activation as Activation,
    infinite_width_nngp as infinite_width_nngp,
    infinite_width_ntk as infinite_width_ntk,
)
from .lazy import (
    frozen_kernel_gain as frozen_kernel_gain,
    lazy_test_error_by_shell as lazy_test_error_by_shell,
    lazy_test_predictions as lazy_test_predictions,
)
from .models import MLP as MLP, RandomFeatures as RandomFeatures, ResidualMLP as ResidualMLP
from .ntk import (
    NTKImplementation as NTKImplementation,
    empirical_ntk as empirical_ntk,
    ntk_fn as ntk_fn,
)
from .ntk_jaxpr import (
    LeafKind as LeafKind,
    LeafReport as LeafReport,
    jaxpr_ntk_report as jaxpr_ntk_report,
)
from .record import (
    TrainingConfig as TrainingConfig,
    TrainingMethod as TrainingMethod,
    TrainingRecord as TrainingRecord,
    record_trajectory as record_trajectory,
)
from .training import (
    gradient_flow as gradient_flow,
    log_steps as log_steps,
    log_times as log_times,
    train_optax as train_optax,
)
