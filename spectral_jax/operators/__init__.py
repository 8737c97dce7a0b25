"""Where M(t) comes from: operators with a value and an exact time derivative."""

from .core import (
    AbstractOperator as AbstractOperator,
    CallableOperator as CallableOperator,
    FrozenOperator as FrozenOperator,
    InterpolatedOperator as InterpolatedOperator,
    RotatingPowerLaw as RotatingPowerLaw,
    banded_generator as banded_generator,
)
