"""Where M(t) comes from: operators with a value and an exact time derivative."""

from .adversarial import (
    AvoidedCrossings as AvoidedCrossings,
    BreathingRBF as BreathingRBF,
    LowRankFeatures as LowRankFeatures,
    SplittingCluster as SplittingCluster,
)
from .base import (
    AbstractOperator as AbstractOperator,
    CallableOperator as CallableOperator,
    FrozenOperator as FrozenOperator,
)
from .closed_form import RotatingPowerLaw as RotatingPowerLaw, banded_generator as banded_generator
from .interpolated import InterpolatedOperator as InterpolatedOperator
