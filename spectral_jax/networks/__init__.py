"""Real networks: empirical NTK, model adapters, models, data, training records and their analysis."""

from .analysis import (
    NetworkAnalysis as NetworkAnalysis,
    analyze_training as analyze_training,
)
from .data import (
    RegressionData as RegressionData,
    load_digits_data as load_digits_data,
    power_law_teacher as power_law_teacher,
)
from .models import (
    MLP as MLP,
    RandomFeatures as RandomFeatures,
    ResidualMLP as ResidualMLP,
)
from .ntk import (
    NTKImplementation as NTKImplementation,
    empirical_ntk as empirical_ntk,
    from_linen as from_linen,
    from_nnx as from_nnx,
    ntk_flow_derivative as ntk_flow_derivative,
    ntk_fn as ntk_fn,
)
from .training import (
    TrainingRecord as TrainingRecord,
    gradient_flow as gradient_flow,
    log_times as log_times,
    train_optax as train_optax,
)
